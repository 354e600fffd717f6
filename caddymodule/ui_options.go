package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// UIOptions brands the built-in pages served under the UI prefix.
type UIOptions struct {
	// ProductName is shown in the page header and titles. Default:
	// "Account".
	ProductName string `json:"product_name,omitempty"`

	// LogoURL is an image shown next to the product name: an absolute
	// path on this site, an http(s) URL or a data:image URL. Default: a
	// built-in mark in the primary colour.
	LogoURL string `json:"logo_url,omitempty"`

	// PrimaryColor is the CSS colour of buttons, links and focus rings:
	// #hex, a named colour or a colour function such as oklch(…).
	// Default: #2563eb.
	PrimaryColor string `json:"primary_color,omitempty"`

	// Prefix is the path of the built-in pages, the same as the app's
	// ui_prefix (set only one of them). Default: /ui/.
	Prefix string `json:"prefix,omitempty"`
}

// unmarshalUIOption reads the `ui` block and `cors_allowed_origins` of
// the kratos global option:
//
//	ui {
//		product_name <name>
//		logo_url <url>
//		primary_color <css colour>
//		prefix <path>
//	}
//	cors_allowed_origins <origin...>
//
// `ui { prefix }` counts as ui_prefix (o.seen), so the two cannot both be
// given.
func (a *App) unmarshalUIOption(o *globalOption) (bool, error) {
	switch o.name {
	case "cors_allowed_origins":
		origins := o.d.RemainingArgs()
		if len(origins) == 0 {
			return true, o.d.ArgErr()
		}
		for _, origin := range origins {
			if !hasPlaceholder(origin) {
				if err := checkCORSOrigin(origin); err != nil {
					return true, o.d.Errf("cors_allowed_origins: %v", err)
				}
			}
		}
		a.CORSAllowedOrigins = append(a.CORSAllowedOrigins, origins...)
		return true, nil
	case "ui":
		if a.UI == nil {
			a.UI = new(UIOptions)
		}
		return true, o.block(func(d *caddyfile.Dispenser) error { return a.UI.unmarshalCaddyfile(d, o.seen) })
	}
	return false, nil
}

// unmarshalCaddyfile reads the block of the ui subdirective; seen is the
// global option's, where prefix counts as ui_prefix.
func (ui *UIOptions) unmarshalCaddyfile(d *caddyfile.Dispenser, seen map[string]bool) error {
	sub := make(map[string]bool)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		key := d.Val()
		if sub[key] {
			return d.Errf("ui: duplicate subdirective %q", key)
		}
		sub[key] = true
		var v string
		if !d.AllArgs(&v) {
			if key == "primary_color" {
				// An unquoted #hex is a comment to the Caddyfile lexer.
				return d.Errf(`ui: primary_color: want one colour; quote hex colours ("#7c3aed"), an unquoted # starts a comment`)
			}
			return d.ArgErr()
		}
		check := func(err error) error {
			if err != nil {
				return d.Errf("ui: %s: %v", key, err)
			}
			return nil
		}
		switch key {
		case "product_name":
			if err := check(checkProductName(v)); err != nil {
				return err
			}
			ui.ProductName = v
		case "logo_url":
			if !hasPlaceholder(v) {
				if err := check(checkLogoURL(v)); err != nil {
					return err
				}
			}
			ui.LogoURL = v
		case "primary_color":
			if !hasPlaceholder(v) {
				if err := check(checkCSSColor(v)); err != nil {
					return err
				}
			}
			ui.PrimaryColor = v
		case "prefix":
			if seen["ui_prefix"] {
				return d.Errf("ui: prefix: ui_prefix is already set; use one of them")
			}
			seen["ui_prefix"] = true
			if !hasPlaceholder(v) {
				if err := check(checkPath(v)); err != nil {
					return err
				}
			}
			ui.Prefix = v
		default:
			return d.Errf("ui: unrecognized subdirective %q", key)
		}
	}
	return nil
}

// uiFlowsConfig maps the UI branding and CORS settings into cfg after
// placeholder replacement (r) and checks them (called from flowsConfig).
func (a *App) uiFlowsConfig(cfg *flows.Config, r func(string) string, errs *configErrors) {
	cfg.CORSAllowedOrigins = nil
	for _, o := range a.CORSAllowedOrigins {
		o = r(o)
		if err := checkCORSOrigin(o); err != nil {
			errs.check("cors_allowed_origins", err)
			continue
		}
		cfg.CORSAllowedOrigins = append(cfg.CORSAllowedOrigins, o)
	}
	if a.UI == nil {
		return
	}
	if v := r(a.UI.ProductName); v != "" {
		errs.check("ui.product_name", checkProductName(v))
		cfg.UIProductName = v
	}
	if v := r(a.UI.LogoURL); v != "" {
		errs.check("ui.logo_url", checkLogoURL(v))
		cfg.UILogoURL = v
	}
	if v := r(a.UI.PrimaryColor); v != "" {
		errs.check("ui.primary_color", checkCSSColor(v))
		cfg.UIPrimaryColor = v
	}
	if v := r(a.UI.Prefix); v != "" {
		errs.check("ui.prefix", checkPath(v))
		if cfg.UIPrefix != "" && cfg.UIPrefix != v {
			errs.check("ui.prefix", errors.New("ui_prefix is set too; use one of them"))
		}
		cfg.UIPrefix = v
	}
}

func checkProductName(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	if len(s) > 80 {
		return fmt.Errorf("%q is longer than 80 bytes", s)
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return fmt.Errorf("%q contains control characters", s)
		}
	}
	return nil
}

// checkLogoURL accepts an absolute path, an http(s) URL or a base64
// data:image URL (the pages' Content-Security-Policy allows exactly these).
func checkLogoURL(s string) error {
	switch {
	case strings.HasPrefix(s, "data:image/"):
		if !strings.Contains(s, ";base64,") {
			return errors.New("a data URL must be data:image/<type>;base64,…")
		}
		return nil
	case strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//"):
		if strings.ContainsAny(s, " \"'<>") {
			return fmt.Errorf("invalid path %q", s)
		}
		return nil
	}
	if err := checkHTTPURL(s); err != nil {
		return fmt.Errorf("%w (or an absolute path, or a data:image URL)", err)
	}
	if u, _ := url.Parse(s); strings.ContainsAny(u.Host, "*") {
		return fmt.Errorf("invalid URL %q", s)
	}
	return nil
}

func checkCSSColor(s string) error {
	if !flows.ValidCSSColor(s) {
		return fmt.Errorf("invalid colour %q: want #rgb, #rrggbb, a colour name or a function such as rgb(…) or oklch(…)", s)
	}
	return nil
}

func checkCORSOrigin(s string) error {
	if !flows.ValidCORSOrigin(s) {
		return fmt.Errorf("invalid origin %q: want scheme://host[:port] (a * may stand for subdomains, e.g. https://*.example.com), or *", s)
	}
	return nil
}
