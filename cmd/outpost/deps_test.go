package main

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplianceBinaryHasNoCgoOrFyne keeps the appliance a static,
// cross-compilable binary: no package it links may need cgo, and the fyne
// console (which does) must stay in its own binary.
func TestApplianceBinaryHasNoCgoOrFyne(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64", "arm"} {
		t.Run(arch, func(t *testing.T) {
			cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,CgoFiles,Standard", ".")
			// With cgo enabled, a package that can use cgo would list its
			// cgo files, so this catches a dependency that silently
			// falls back to a slower pure-Go path only when cgo is off.
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=1")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			dec := json.NewDecoder(strings.NewReader(string(out)))
			for dec.More() {
				var p struct {
					ImportPath string
					CgoFiles   []string
					Standard   bool
				}
				if err := dec.Decode(&p); err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(p.ImportPath, "fyne.io/") {
					t.Errorf("the appliance binary imports %s; keep fyne in cmd/outpost-console", p.ImportPath)
				}
				if !p.Standard && len(p.CgoFiles) > 0 {
					t.Errorf("%s uses cgo (%v); the appliance must build with CGO_ENABLED=0", p.ImportPath, p.CgoFiles)
				}
			}
		})
	}
}

// TestEveryPackageHasADocComment: a package a newcomer cannot place from
// its doc comment is a package that will grow the wrong things.
func TestEveryPackageHasADocComment(t *testing.T) {
	root := filepath.Join("..", "..")
	pkgs := map[string]bool{}
	documented := map[string]bool{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		dir := filepath.Dir(p)
		pkgs[dir] = true
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err == nil && f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
			documented[dir] = true
		}
		return nil
	})
	for dir := range pkgs {
		if !documented[dir] {
			t.Errorf("package in %s has no doc comment", dir)
		}
	}
}
