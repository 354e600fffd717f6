package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Browser tests drive Debian's chromium headless through the DevTools
// protocol (chromedp) against an instance that serves the built-in pages.
// scripts/install-test-deps.sh installs chromium; without it the tests
// skip.

const chromiumPath = "/usr/bin/chromium"

// uiInstance is an instance whose flows use the built-in pages under /ui/,
// with recovery and verification mailing through an SMTP server of the
// test process.
type uiInstance struct {
	*instance
	mail *mailServer
}

// startUIInstance starts an instance with the harness's configuration,
// then loads the UI configuration through Caddy's admin API (the harness's
// Caddyfile points login, registration and error at an external UI).
func startUIInstance(t *testing.T, extra ...string) *uiInstance {
	t.Helper()
	return startUIInstanceOn(t, "127.0.0.1", extra...)
}

// startUIInstanceOn is startUIInstance with the sites on host: WebAuthn
// needs a domain ("localhost"), not an IP address.
func startUIInstanceOn(t *testing.T, host string, extra ...string) *uiInstance {
	t.Helper()
	return startUIInstanceWith(t, host, func(*instance) []string { return extra })
}

// startUIInstanceWith is startUIInstanceOn with the extra lines of the
// kratos option made for the started instance (e.g. an oidc block, whose
// callback URLs need its public URL).
func startUIInstanceWith(t *testing.T, host string, extraFor func(in *instance) []string) *uiInstance {
	t.Helper()
	m := startMailServer(t)
	in := startInstance(t, instanceOptions{})
	if host != "127.0.0.1" {
		in.publicURL = fmt.Sprintf("http://%s:%d/", host, in.apiPort)
		in.apiBase = strings.TrimSuffix(in.publicURL, "/")
		in.appBase = fmt.Sprintf("http://%s:%d", host, in.appPort)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin 127.0.0.1:%d
	auto_https off
	kratos {
		storage %s
		public_url %s
		dev
		default_return_url %s/
		allowed_return_urls %s/
		bcrypt_cost 4
		recovery
		verification
`, in.adminPort, in.storageRef(), in.publicURL, in.appBase, in.appBase)
	for _, l := range append(mailLines(m), extraFor(in)...) {
		fmt.Fprintf(&b, "\t\t%s\n", l)
	}
	fmt.Fprintf(&b, `	}
}

%s {
	kratos
}

%s {
	kratos
	kratos_gate {
		allow /public/*
	}
	reverse_proxy %s
}
`, in.apiBase, in.appBase, in.upstream.hostPort())
	if err := os.WriteFile(in.configPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", in.adminBase+"/load", strings.NewReader(b.String()))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("loading the UI config: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("loading the UI config: %d %s\n%s", resp.StatusCode, body, b.String())
	}
	return &uiInstance{instance: in, mail: m}
}

// ---------------------------------------------------------------------------
// Chromium

// chromium is one headless browser process; tabs get their own browser
// context (a separate cookie jar, like a separate browser).
type chromium struct {
	browser context.Context
}

var (
	chromiumOnce    sync.Once
	chromiumSkipMsg string
)

// ensureChromium makes sure /usr/bin/chromium exists, running
// scripts/install-test-deps.sh once if it does not; it skips t when the
// browser cannot be had.
func ensureChromium(t *testing.T) {
	t.Helper()
	chromiumOnce.Do(func() {
		if _, err := os.Stat(chromiumPath); err == nil {
			return
		}
		script, _ := filepath.Abs("../scripts/install-test-deps.sh")
		cmd := exec.Command(script)
		out, err := cmd.CombinedOutput()
		if _, statErr := os.Stat(chromiumPath); statErr != nil {
			chromiumSkipMsg = fmt.Sprintf("browser tests need %s (Debian package chromium; run scripts/install-test-deps.sh as root): install attempt: %v\n%s", chromiumPath, err, out)
		}
	})
	if chromiumSkipMsg != "" {
		if os.Getenv("CI") != "" {
			// In CI the browser suite must run: test.sh installs chromium.
			t.Fatal(chromiumSkipMsg)
		}
		t.Skip(chromiumSkipMsg)
	}
}

// startChromium starts a headless chromium for t (closed when t ends).
func startChromium(t *testing.T) *chromium {
	t.Helper()
	ensureChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,PasswordLeakDetection,AutofillServerCommunication"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return &chromium{browser: browser}
}

// tab is one page in its own browser context.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newTab opens a tab with a fresh cookie jar, closed when t ends.
func (c *chromium) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.browser, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return &tab{t: t, ctx: ctx}
}

func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\n(at %s)", what, err, b.urlNoFail())
	}
}

func (b *tab) urlNoFail() string {
	u, _ := chromedp.Run(b.ctx, chromedp.Location())
	return u
}

// navigate loads u and waits for the document.
func (b *tab) navigate(u string) {
	b.t.Helper()
	b.do("navigate to "+u, chromedp.Navigate(u))
	b.waitJS(`document.readyState === "complete"`)
}

func (b *tab) url() string {
	b.t.Helper()
	u, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	return u
}

// eval runs js and decodes its JSON-able result into T.
func evalT[T any](b *tab, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v\n(at %s)", js, err, b.urlNoFail())
	}
	return v
}

func (b *tab) str(js string) string { b.t.Helper(); return evalT[string](b, js) }

// waitJS polls js from Go until it is true; evaluation errors (a page
// being replaced) count as false.
func (b *tab) waitJS(js string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.documentElement ? document.documentElement.outerHTML.slice(0, 4000) : ""`))
			b.t.Fatalf("waited 20s for %s (last error %v) at %s\n%s", js, err, b.urlNoFail(), html)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fill types val into the field matched by sel (after clearing it).
func (b *tab) fill(sel, val string) {
	b.t.Helper()
	b.do("fill "+sel, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), val))
}

// click clicks sel and waits until a new document has loaded.
func (b *tab) clickNav(sel string) {
	b.t.Helper()
	b.do("mark page", chromedp.Evaluate[chromedp.Void](`window.__e2eOld = true`))
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
	b.waitJS(`!window.__e2eOld && document.readyState === "complete"`)
}

// has reports whether sel matches an element.
func (b *tab) has(sel string) bool {
	b.t.Helper()
	return evalT[bool](b, fmt.Sprintf(`!!document.querySelector(%q)`, sel))
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return b.str(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel))
}

func (b *tab) value(sel string) string {
	b.t.Helper()
	return b.str(fmt.Sprintf(`(document.querySelector(%q) || {}).value || ""`, sel))
}

// wantPage fails unless the tab is at path (prefix match on the URL
// without query) of base.
func (b *tab) wantURLPrefix(prefix string) {
	b.t.Helper()
	if u := b.url(); !strings.HasPrefix(u, prefix) {
		b.t.Fatalf("at %s, want %s…\n%s", u, prefix, b.str(`document.body ? document.body.innerText.slice(0, 2000) : ""`))
	}
}

// echo reads the gated upstream's JSON answer shown in the tab.
func (b *tab) echo() echoResponse {
	b.t.Helper()
	raw := b.str(`(document.querySelector("pre") || document.body).textContent`)
	var e echoResponse
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		b.t.Fatalf("the page at %s is not the upstream's echo: %v\n%s", b.urlNoFail(), err, raw)
	}
	return e
}

// whoami returns the identity id of the tab's session (navigating to the
// API's whoami).
func (b *tab) whoami(in *uiInstance) string {
	b.t.Helper()
	b.navigate(in.apiBase + "/sessions/whoami")
	raw := b.str(`(document.querySelector("pre") || document.body).textContent`)
	var s struct {
		Identity struct {
			ID string `json:"id"`
		} `json:"identity"`
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil || s.Identity.ID == "" {
		b.t.Fatalf("whoami in the browser: %v\n%s", err, raw)
	}
	return s.Identity.ID
}

// flowMessageIDs returns the data-message-id of the page's flow messages.
func (b *tab) flowMessageIDs() []int64 {
	b.t.Helper()
	return evalT[[]int64](b, `Array.from(document.querySelectorAll(".messages [data-message-id]")).map(e => +e.dataset.messageId)`)
}

// ---------------------------------------------------------------------------
// Journeys' building blocks

// register signs up email/password through the two registration screens,
// starting on the login page.
func (b *tab) registerFromLogin(email, password, first string) {
	b.t.Helper()
	b.clickNav(`.footer-links a[href*="/self-service/registration/browser"]`)
	b.wantURLPrefix(b.base() + "/ui/registration?flow=")
	b.fill(`input[name="traits.email"]`, email)
	if first != "" && b.has(`input[name="traits.name.first"]`) {
		b.fill(`input[name="traits.name.first"]`, first)
	}
	b.clickNav(`button[name="method"][value="profile"]`)
	// Second screen: the address is shown, the password asked.
	b.wantURLPrefix(b.base() + "/ui/registration?flow=")
	if !strings.Contains(b.text(".summary"), email) {
		b.t.Errorf("second registration screen does not show %s: %q", email, b.text(".card"))
	}
	b.fill(`input[name="password"]`, password)
	b.clickNav(`button[name="method"][value="password"]`)
}

// login signs in on the login page the tab shows.
func (b *tab) login(email, password string) {
	b.t.Helper()
	b.wantURLPrefix(b.base() + "/ui/login?flow=")
	b.fill(`input[name="identifier"]`, email)
	b.fill(`input[name="password"]`, password)
	b.clickNav(`button[name="method"][value="password"]`)
}

func (b *tab) base() string {
	u := b.url()
	if i := strings.Index(u[len("http://"):], "/"); i >= 0 {
		return u[:len("http://")+i]
	}
	return u
}

// ---------------------------------------------------------------------------
// Screenshots

// screenshotsDir is where UPDATE_SCREENSHOTS=1 writes the pages.
const screenshotsDir = "../docs/screenshots"

func updateScreenshots() bool { return os.Getenv("UPDATE_SCREENSHOTS") == "1" }

// screenshot saves the full page at width × height (height grows with the
// page) as docs/screenshots/<name>.png, as a palette PNG to keep it small.
func (b *tab) screenshot(name string, width, height int64, dark bool) {
	b.t.Helper()
	scheme := "light"
	if dark {
		scheme = "dark"
	}
	b.do("emulate "+name,
		chromedp.EmulateViewport(width, height, chromedp.EmulateScale(1)),
		emulateColorScheme(scheme),
	)
	b.waitJS(`document.readyState === "complete" && document.fonts.status === "loaded"`)
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	out := quantize(img)
	if err := os.MkdirAll(screenshotsDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(screenshotsDir, name+".png"))
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, out); err != nil {
		b.t.Fatal(err)
	}
	b.do("reset viewport", chromedp.EmulateViewport(1280, 800, chromedp.EmulateScale(1)), emulateColorScheme(""))
}

// quantize reduces img to at most 256 colours (a paletted PNG is a
// fraction of the size of a true-colour one for flat UI pictures).
func quantize(img image.Image) image.Image {
	return quantizeImage(img, 256)
}

// emulateColorScheme sets prefers-color-scheme ("" resets it).
func emulateColorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		var features []*emulation.MediaFeature
		if scheme != "" {
			features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
		}
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features})
		return chromedp.Void{}, err
	}
}

// quantizeImage maps img onto its n most frequent colours (5 bits per
// channel buckets, each represented by its average colour), without
// dithering so text stays crisp.
func quantizeImage(img image.Image, n int) *image.Paletted {
	bounds := img.Bounds()
	type acc struct{ r, g, b, count int }
	buckets := map[int]*acc{}
	key := func(r, g, b uint32) int { return int(r>>11)<<10 | int(g>>11)<<5 | int(b>>11) }
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			k := key(r, g, b)
			a := buckets[k]
			if a == nil {
				a = &acc{}
				buckets[k] = a
			}
			a.r += int(r >> 8)
			a.g += int(g >> 8)
			a.b += int(b >> 8)
			a.count++
		}
	}
	keys := make([]int, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return buckets[keys[i]].count > buckets[keys[j]].count })
	if len(keys) > n {
		keys = keys[:n]
	}
	pal := make(color.Palette, len(keys))
	for i, k := range keys {
		a := buckets[k]
		pal[i] = color.RGBA{uint8(a.r / a.count), uint8(a.g / a.count), uint8(a.b / a.count), 255}
	}
	out := image.NewPaletted(bounds, pal)
	index := map[int]uint8{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			k := key(r, g, b)
			i, ok := index[k]
			if !ok {
				i = uint8(pal.Index(color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}))
				index[k] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	return out
}

// addVirtualAuthenticator gives the tab a platform authenticator that
// holds passkeys and verifies the user without a prompt.
func (b *tab) addVirtualAuthenticator() {
	b.t.Helper()
	b.do("virtual authenticator", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			},
		})
		return chromedp.Void{}, err
	})
}
