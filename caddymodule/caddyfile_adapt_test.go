package caddymodule

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// TestCaddyfileAdapt runs the golden files in testdata: a Caddyfile, a
// line of ten dashes, then either the expected JSON or (when it does not
// start with '{') text the adapt error must contain. Like caddy's own
// caddytest/integration/caddyfile_adapt_test.go.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files in testdata: %v", err)
	}
	newlines := regexp.MustCompile(`\r?\n`)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(newlines.ReplaceAllString(string(data), "\n"), "----------")
			if len(parts) != 2 {
				t.Fatalf("%s: want exactly one ---------- separator, got %d parts", name, len(parts))
			}
			caddyfile, expected := strings.TrimSpace(parts[0])+"\n", strings.TrimSpace(parts[1])

			if strings.HasPrefix(expected, "{") {
				if !caddytest.CompareAdapt(t, name, caddyfile, "caddyfile", expected) {
					t.Errorf("adapting %s: output differs from the golden JSON (diff above)", name)
				}
				return
			}
			_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
			if err == nil {
				t.Fatalf("adapting %s: want an error containing %q, got none", name, expected)
			}
			if !strings.Contains(err.Error(), expected) {
				t.Errorf("adapting %s: want an error containing\n\t%s\ngot\n\t%v", name, expected, err)
			}
		})
	}
}

// TestCaddyfileExampleGolden keeps testdata/caddyfile_example.caddyfiletest
// in step with the Caddyfile.example at the repository root.
func TestCaddyfileExampleGolden(t *testing.T) {
	example, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("testdata/caddyfile_example.caddyfiletest")
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := strings.Cut(string(golden), "----------")
	if strings.TrimSpace(got) != strings.TrimSpace(string(example)) {
		t.Errorf("testdata/caddyfile_example.caddyfiletest does not start with ../Caddyfile.example; copy the example into it and update the JSON")
	}
}

// TestREADMEExamplesAdapt adapts every complete Caddyfile in the README
// (the code blocks that start with a global options block), so the
// documented setups stay valid as options change.
func TestREADMEExamplesAdapt(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	n := 0
	for _, b := range blocks {
		if !strings.HasPrefix(b[1], "{\n") {
			continue // a fragment (one directive or subdirective)
		}
		n++
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(b[1]), nil); err != nil {
			t.Errorf("README example %d does not adapt: %v\n%s", n, err, b[1])
		}
	}
	if n < 2 {
		t.Fatalf("found %d complete Caddyfiles in the README, want at least 2", n)
	}
}
