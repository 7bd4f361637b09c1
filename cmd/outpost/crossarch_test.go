package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestArmBuildsRunUnderQemu builds the Pi binaries and runs each for real
// under Debian's qemu-user-static: the demo starts, imports the sample
// course, and its portal and /healthz answer. Compiling for arm proves
// little; running it catches alignment, word-size and syscall surprises.
func TestArmBuildsRunUnderQemu(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two emulated binaries; skipped with -short")
	}
	for _, tc := range []struct{ arch, goarm, qemu string }{
		{"arm64", "", "qemu-aarch64-static"},
		{"arm", "7", "qemu-arm-static"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			qemu, err := exec.LookPath(tc.qemu)
			if err != nil {
				t.Fatalf("%s not found: install Debian's qemu-user-static (make test does this when run as root)", tc.qemu)
			}
			bin := filepath.Join(t.TempDir(), "outpost-"+tc.arch)
			build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
			build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+tc.arch, "GOARM="+tc.goarm)
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, qemu, bin, "demo", "--data", t.TempDir(), "--listen", "127.0.0.1:0")
			stdout, _ := cmd.StdoutPipe()
			cmd.Stderr = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			url := ""
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if u, ok := strings.CutPrefix(sc.Text(), "Open "); ok {
					url = strings.TrimSuffix(u, " in a browser.")
					break
				}
			}
			if url == "" {
				t.Fatal("the emulated demo exited without printing its URL")
			}
			go io.Copy(io.Discard, stdout)
			for _, path := range []string{"healthz", ""} {
				resp, err := http.Get(url + path)
				if err != nil {
					t.Fatalf("GET %s%s: %v", url, path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s%s: %s", url, path, resp.Status)
				}
				if path == "" && !strings.Contains(string(body), "Water") {
					t.Fatalf("portal home does not list the sample course:\n%.500s", body)
				}
			}
			// Graceful shutdown works on the emulated target too.
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("demo did not exit cleanly on SIGTERM: %v", err)
			}
		})
	}
}
