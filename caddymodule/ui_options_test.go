package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestUIOptionsMapIntoFlowsConfig(t *testing.T) {
	t.Setenv("SPA_ORIGIN", "https://spa.example.net")
	t.Setenv("BRAND", "oklch(55% 0.2 260)")
	a := appJSON(t, `{
		"public_url": "https://auth.example.com/",
		"ui": {"product_name": "Example Cloud", "logo_url": "/static/logo.svg", "primary_color": "{env.BRAND}", "prefix": "/account/"},
		"cors_allowed_origins": ["https://app.example.com", "{env.SPA_ORIGIN}"]
	}`)
	cfg, err := a.flowsConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UIProductName != "Example Cloud" || cfg.UILogoURL != "/static/logo.svg" || cfg.UIPrimaryColor != "oklch(55% 0.2 260)" || cfg.UIPrefix != "/account/" {
		t.Errorf("UI fields: %+v", cfg)
	}
	if strings.Join(cfg.CORSAllowedOrigins, " ") != "https://app.example.com https://spa.example.net" {
		t.Errorf("CORS origins: %v", cfg.CORSAllowedOrigins)
	}
}

func TestUIOptionsChecked(t *testing.T) {
	t.Setenv("BAD_ORIGIN", "https://x.example.com/path")
	for _, c := range []struct {
		app  App
		want string
	}{
		{App{UI: &UIOptions{PrimaryColor: "red;}body{display:none"}}, "ui.primary_color"},
		{App{UI: &UIOptions{LogoURL: "javascript:alert(1)"}}, "ui.logo_url"},
		{App{UI: &UIOptions{Prefix: "account"}}, "ui.prefix"},
		{*appJSON(t, `{"ui_prefix": "/ui/", "ui": {"prefix": "/account/"}}`), "ui_prefix is set too"},
		{*appJSON(t, `{"cors_allowed_origins": ["{env.BAD_ORIGIN}"]}`), "cors_allowed_origins"},
	} {
		_, err := c.app.flowsConfig(caddy.NewReplacer())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.app, err, c.want)
		}
	}
}
