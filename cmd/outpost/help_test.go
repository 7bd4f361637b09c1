package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"outpost/content/samplecourse"
)

// TestFlagHelpNamesValues walks every verb's flags: pflag reads the first
// `quoted` word of a usage text as the value's name, so a backtick in a
// usage printed "--enrol outpost hub token create" in serve --help. No
// usage may carry one, and every value name must be one word.
func TestFlagHelpNamesValues(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			if strings.Contains(f.Usage, "`") || strings.ContainsAny(name, " \t") {
				t.Errorf("%s --%s: value shown as %q in help (usage %q)", c.CommandPath(), f.Name, name, f.Usage)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(io.Discard, io.Discard))

	out, err := run(t, "serve", "--help")
	if err != nil || !strings.Contains(out, "--enrol string") {
		t.Fatalf("serve --help: %v\n%s", err, out)
	}
}

// TestExportRefusesAnUnknownExtension: `content export ID out.tgz` wrote a
// folder named out.tgz. An extension that is no format export writes is
// refused, listing those it writes; folders are still written.
func TestExportRefusesAnUnknownExtension(t *testing.T) {
	data := newNodeDir(t)
	pack := t.TempDir()
	m, err := samplecourse.Write(pack)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "content", "import", pack, "--data", data); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	dir := t.TempDir()
	for _, name := range []string{"out.tgz", "out.tar.gz", "out.7z"} {
		out := filepath.Join(dir, name)
		_, err := run(t, "content", "export", m.ID, out, "--data", data)
		if err == nil || !strings.Contains(err.Error(), ".tar.zst") || !strings.Contains(err.Error(), ".zip") {
			t.Errorf("export to %s: %v", name, err)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("export to %s wrote something there: %v", name, err)
		}
	}
	for _, name := range []string{"folder", "course.v2/"} {
		out := dir + "/" + name
		if o, err := run(t, "content", "export", m.ID, out, "--data", data); err != nil {
			t.Fatalf("export to the folder %s: %v\n%s", name, err, o)
		}
		if _, err := os.Stat(filepath.Join(out, "manifest.json")); err != nil {
			t.Fatalf("export to the folder %s: %v", name, err)
		}
	}
}
