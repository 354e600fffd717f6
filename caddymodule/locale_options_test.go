package caddymodule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/locale"
)

func TestLocaleOptions(t *testing.T) {
	var cfg flows.Config
	var ccfg courier.Config
	a := &App{logger: zap.NewNop()}
	if err := a.provisionLocale(caddy.NewReplacer(), &cfg, &ccfg); err != nil || cfg.Locale != locale.Builtin() || ccfg.Locale != cfg.Locale {
		t.Fatalf("no options: %v %p", err, cfg.Locale)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nl.json"), []byte(`{"name": "Nederlands", "pages": {"login.title": "Inloggen"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CK_TRANSLATIONS", dir)
	core, logs := observer.New(zap.WarnLevel)
	a = &App{logger: zap.New(core), LocaleOptions: LocaleOptions{TranslationsDir: "{env.CK_TRANSLATIONS}", Languages: []string{"en", "nl"}, DefaultLanguage: "nl"}}
	if err := a.provisionLocale(caddy.NewReplacer(), &cfg, &ccfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Locale.Default() != "nl" || ccfg.Locale != cfg.Locale || len(cfg.Locale.Languages()) != 2 {
		t.Errorf("catalogue: default %s, %v", cfg.Locale.Default(), cfg.Locale.Languages())
	}
	if got := cfg.Locale.Localizer("nl", nil, time.Now()).Page("login.title"); got != "Inloggen" {
		t.Errorf("nl login.title %q", got)
	}
	if e := logs.FilterField(zap.String("language", "nl")).All(); len(e) != 1 {
		t.Errorf("the gaps of nl are not logged: %v", logs.All())
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "de.json"), []byte(`{"messages": {"4000002": "Feld {{.nope}} fehlt"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts LocaleOptions
		want []string
	}{
		{LocaleOptions{TranslationsDir: bad}, []string{"translations_dir: ", filepath.Join(bad, "de.json"), `messages["4000002"]`, "nope"}},
		{LocaleOptions{TranslationsDir: filepath.Join(bad, "missing")}, []string{"translations_dir: ", "missing"}},
		{LocaleOptions{Languages: []string{"en", "nl"}}, []string{"languages: ", `"nl"`}},
		{LocaleOptions{TranslationsDir: dir, Languages: []string{"en", "sv"}}, []string{"languages: ", `"sv"`}},
		{LocaleOptions{DefaultLanguage: "sv"}, []string{"default_language: ", `"sv"`}},
	} {
		a := &App{logger: zap.NewNop(), LocaleOptions: c.opts}
		err := a.provisionLocale(caddy.NewReplacer(), &cfg, &ccfg)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %v, want %q in it", c.opts, err, w)
			}
		}
	}
}
