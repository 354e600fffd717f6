package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 11, item 2: mail links and codes pointed wherever the Host header
// said. Without public_url a recovery submit with `Host: evil.example`
// mailed http://evil.example/self-service/recovery?…&token=…, and the token
// replayed on the real host was an account takeover. public_url is now
// required; nothing is built from the Host header.

// TestSecurityPublicURLRequired: configurations without public_url stop
// Caddy at start with the Caddyfile line named (before the fix they started
// and derived every URL from the request's Host).
func TestSecurityPublicURLRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, caddyfile, want string
	}{
		{"global option without public_url", `{
	admin off
	kratos {
		storage %[1]s
		recovery link
	}
}

http://127.0.0.1:%[2]d {
	kratos
}
`, "public_url is required (e.g. public_url https://auth.example.com/): links in mails, redirects, the CSRF cookie name and assertion issuers are built from it, never from the request's Host header, at %s:3"},
		{"directive without the global option", `{
	admin off
}

http://127.0.0.1:%[2]d {
	kratos
}
`, "kratos: add the kratos global option with public_url, e.g. { kratos { public_url https://auth.example.com/ } }; links in mails, redirects, the CSRF cookie name and assertion issuers are built from it, never from the request's Host header, at %s:6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ports, err := freePorts(1)
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "Caddyfile")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(tc.caddyfile, filepath.Join(dir, "data"), ports[0])), 0o644); err != nil {
				t.Fatal(err)
			}
			c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(c, binPath, "run", "--config", cfg, "--adapter", "caddyfile")
			cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"))
			out, err := cmd.CombinedOutput()
			if err == nil || c.Err() != nil {
				t.Fatalf("caddy-kratos did not stop at start (err %v, ctx %v):\n%s", err, c.Err(), out)
			}
			if want := fmt.Sprintf(tc.want, cfg); !strings.Contains(string(out), want) {
				t.Errorf("start-up error does not say\n\t%s\ngot:\n%s", want, out)
			}
		})
	}
}

// TestSecuritySpoofedHostMailLink: a recovery link requested with a forged
// Host, X-Forwarded-Host and Forwarded header is mailed with the configured
// public URL, and the flow the forged request gets carries only public URLs.
// The API is also served on a site without a host matcher (`http://:port`),
// so the forged Host reaches the engine instead of Caddy's empty answer for
// unknown hosts.
func TestSecuritySpoofedHostMailLink(t *testing.T) {
	t.Parallel()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	mails := startMailServer(t)
	in := startInstance(t, instanceOptions{
		GlobalKratos: append(mailLines(mails), "recovery link"),
		ExtraSites:   fmt.Sprintf("http://:%d {\n\tkratos\n}\n", ports[0]),
	})
	anyHost := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	u := registerNative(t, in)

	send := func(method, path string, body any) (*http.Response, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, anyHost+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Forwarded", "host=evil.example;proto=https")
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}

	res, b := send("GET", "/self-service/recovery/api", nil)
	wantStatus(t, res, b, http.StatusOK)
	if bytes.Contains(b, []byte("evil.example")) {
		t.Fatalf("a flow created with a forged Host names it: %s", clip(b))
	}
	var f struct {
		ID string `json:"id"`
		UI struct {
			Action string `json:"action"`
		} `json:"ui"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.ID == "" {
		t.Fatalf("recovery flow: %v %s", err, clip(b))
	}
	if !strings.HasPrefix(f.UI.Action, in.publicURL) {
		t.Errorf("ui.action = %q, want it under %s", f.UI.Action, in.publicURL)
	}
	res, b = send("POST", "/self-service/recovery?flow="+f.ID, map[string]any{"method": "link", "email": u.Email})
	wantStatus(t, res, b, http.StatusOK)
	mailed := mails.last(t, u.Email, subjectRecovery, 1).link(t)
	if prefix := in.publicURL + "self-service/recovery?flow=" + f.ID + "&token="; !strings.HasPrefix(mailed, prefix) {
		t.Fatalf("mailed link = %q, want %s<token>", mailed, prefix)
	}
}
