package caddymodule

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// The public URL and where browsers are sent: public_url, dev,
// default_return_url, allowed_return_urls, ui_url and ui_prefix
// (flows.SiteOptions and flows.BrowserOptions).

// unmarshalBrowserOption reads
//
//	public_url <url>
//	dev
//	default_return_url <url>
//	allowed_return_urls <url...>
//	ui_url <login|registration|settings|recovery|verification|error> <url>
//	ui_prefix <path>
func (a *App) unmarshalBrowserOption(o *globalOption) (bool, error) {
	var err error
	switch o.name {
	case "public_url":
		a.PublicURL, err = o.url()

	case "dev":
		a.Dev, err = o.flag()

	case "default_return_url":
		a.DefaultReturnURL, err = o.url()

	case "allowed_return_urls":
		urls := o.d.RemainingArgs()
		if len(urls) == 0 {
			return true, o.d.ArgErr()
		}
		for _, u := range urls {
			if !hasPlaceholder(u) {
				if err := o.check(flows.CheckAllowedReturnURL(u)); err != nil {
					return true, err
				}
			}
		}
		a.AllowedReturnURLs = append(a.AllowedReturnURLs, urls...)

	case "ui_url":
		var kind, u string
		if !o.d.AllArgs(&kind, &u) {
			return true, o.d.ArgErr()
		}
		if err := o.check(checkUIKind(kind)); err != nil {
			return true, err
		}
		if _, dup := a.UIURLs[kind]; dup {
			return true, o.d.Errf("ui_url: duplicate UI kind %q", kind)
		}
		if !hasPlaceholder(u) {
			if err := o.check(checkHTTPURL(u)); err != nil {
				return true, err
			}
		}
		if a.UIURLs == nil {
			a.UIURLs = make(map[string]string)
		}
		a.UIURLs[kind] = u

	case "ui_prefix":
		a.UIPrefix, err = o.one()
		if err == nil {
			err = o.check(checkPath(a.UIPrefix))
		}

	default:
		return false, nil
	}
	return true, err
}

// browserFlowsConfig replaces the placeholders of the public URL and the
// browser options in cfg and checks them.
func (a *App) browserFlowsConfig(cfg *flows.Config, r func(string) string, errs *configErrors) {
	cfg.PublicURL = r(a.PublicURL)
	switch {
	case cfg.PublicURL != "":
		errs.check("public_url", checkHTTPURL(cfg.PublicURL))
	case a.PublicURL != "":
		errs.check("public_url", fmt.Errorf("%q is empty after replacing placeholders", a.PublicURL))
	default:
		*errs = append(*errs, errors.New(publicURLRequired))
	}
	cfg.DefaultReturnURL = r(a.DefaultReturnURL)
	if cfg.DefaultReturnURL != "" {
		errs.check("default_return_url", checkHTTPURL(cfg.DefaultReturnURL))
	}
	cfg.AllowedReturnURLs = replaceEach(a.AllowedReturnURLs, r)
	for _, u := range cfg.AllowedReturnURLs {
		errs.check("allowed_return_urls", flows.CheckAllowedReturnURL(u))
	}
	cfg.UIURLs = nil
	if len(a.UIURLs) > 0 {
		cfg.UIURLs = make(map[string]string, len(a.UIURLs))
		for _, kind := range slices.Sorted(maps.Keys(a.UIURLs)) {
			u := r(a.UIURLs[kind])
			errs.check("ui_urls", checkUIKind(kind))
			errs.check("ui_urls."+kind, checkHTTPURL(u))
			cfg.UIURLs[kind] = u
		}
	}
	cfg.UIPrefix = r(a.UIPrefix)
	if cfg.UIPrefix != "" {
		errs.check("ui_prefix", checkPath(cfg.UIPrefix))
	}
}
