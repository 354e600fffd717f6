package ui

import (
	"html/template"
	"net/url"
	"regexp"
	"strings"

	"github.com/caddy-kratos/caddy-kratos/locale"
)

var cssColor = regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,30}|(rgb|rgba|hsl|hsla|hwb|lab|lch|oklab|oklch)\([0-9a-zA-Z.,%\s/+-]{1,80}\))$`)

// ValidCSSColor reports whether s is a CSS colour the pages accept for
// UIPrimaryColor: #hex, a named colour or a colour function.
func ValidCSSColor(s string) bool { return cssColor.MatchString(s) }

const defaultPrimaryColor = "#2563eb"

func (p *Pages) primaryColor() string {
	if c := strings.TrimSpace(p.cfg.PrimaryColor); c != "" && ValidCSSColor(c) {
		return c
	}
	return defaultPrimaryColor
}

func (p *Pages) product(l *locale.Localizer) string {
	if s := strings.TrimSpace(p.cfg.ProductName); s != "" {
		return s
	}
	return l.Page("product.default")
}

// logo returns the logo URL if it is one the page may show: an http(s)
// URL, an absolute path, or a data:image URL.
func (p *Pages) logo() template.URL {
	s := strings.TrimSpace(p.cfg.LogoURL)
	switch {
	case s == "":
		return ""
	case strings.HasPrefix(s, "data:image/"):
		return template.URL(s) // #nosec G203 -- data:image/ URLs only (QR codes), checked by the case above
	case strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//"):
		return template.URL(s) // #nosec G203 -- same-origin path, checked by the case above
	}
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return template.URL(u.String()) // #nosec G203 -- http(s) URL validated by the case above
	}
	return ""
}

func (p *Pages) themeCSS() []byte {
	return []byte(":root{--brand:" + p.primaryColor() + "}\n")
}
