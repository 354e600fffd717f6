package flows

import (
	"html/template"
	"net/url"
	"regexp"
	"strings"
)

var cssColor = regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,30}|(rgb|rgba|hsl|hsla|hwb|lab|lch|oklab|oklch)\([0-9a-zA-Z.,%\s/+-]{1,80}\))$`)

// ValidCSSColor reports whether s is a CSS colour the pages accept for
// UIPrimaryColor: #hex, a named colour or a colour function.
func ValidCSSColor(s string) bool { return cssColor.MatchString(s) }

const defaultPrimaryColor = "#2563eb"

func (e *Engine) uiPrimaryColor() string {
	if c := strings.TrimSpace(e.cfg.UIPrimaryColor); c != "" && ValidCSSColor(c) {
		return c
	}
	return defaultPrimaryColor
}

func (e *Engine) uiProduct() string {
	if s := strings.TrimSpace(e.cfg.UIProductName); s != "" {
		return s
	}
	return tr("product.default")
}

// uiLogo returns the logo URL if it is one the page may show: an http(s)
// URL, an absolute path, or a data:image URL.
func (e *Engine) uiLogo() template.URL {
	s := strings.TrimSpace(e.cfg.UILogoURL)
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

func (e *Engine) themeCSS() []byte {
	return []byte(":root{--brand:" + e.uiPrimaryColor() + "}\n")
}
