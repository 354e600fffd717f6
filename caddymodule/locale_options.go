package caddymodule

import (
	"fmt"
	"sort"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/courier"
	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/locale"
)

// LocaleOptions choose the languages of the built-in pages and the mails
// (docs/languages.md). The flow JSON keeps Kratos's English texts.
type LocaleOptions struct {
	// TranslationsDir is a directory of translation files, read once at
	// start: new languages (<lang>.json or .toml), changed texts of the
	// built-in ones, and mail templates
	// (<lang>/mail/<template>/<variant>/email.subject.gotmpl, …). A mistake
	// stops the start with the file and the key named. Default: none.
	TranslationsDir string `json:"translations_dir,omitempty"`

	// Languages are the languages the pages offer and negotiate with
	// Accept-Language (BCP 47 tags: de, pt-BR). Default: the built-in ones
	// (en, de, fr, es, pt) and those of TranslationsDir.
	Languages []string `json:"languages,omitempty"`

	// DefaultLanguage is the language when nothing the browser accepts is
	// offered. Default: en.
	DefaultLanguage string `json:"default_language,omitempty"`
}

// unmarshalLocaleOption parses the language subdirectives of the kratos
// global option (called from UnmarshalCaddyfile's switch):
//
//	translations_dir <dir>
//	languages <tag...>
//	default_language <tag>
func (a *App) unmarshalLocaleOption(d *caddyfile.Dispenser, name string) error {
	args := d.RemainingArgs()
	if len(args) == 0 || (name != "languages" && len(args) != 1) {
		return d.ArgErr()
	}
	if name != "translations_dir" {
		for _, tag := range args {
			if _, ok := locale.Canonical(tag); !ok && !hasPlaceholder(tag) {
				return d.Errf("%s: %q is not a language tag (BCP 47, such as de or pt-BR)", name, tag)
			}
		}
	}
	switch name {
	case "translations_dir":
		a.TranslationsDir = args[0]
	case "languages":
		a.Languages = args
	case "default_language":
		a.DefaultLanguage = args[0]
	}
	return nil
}

// provisionLocale loads the languages of the pages and the mails into the
// engine's and the courier's configuration.
func (a *App) provisionLocale(repl *caddy.Replacer, cfg *flows.Config, ccfg *courier.Config) error {
	cat := locale.Builtin()
	if a.TranslationsDir != "" || len(a.Languages) > 0 || a.DefaultLanguage != "" {
		r := func(s string) string { return repl.ReplaceKnown(s, "") }
		opts := locale.Options{Dir: r(a.TranslationsDir), Default: r(a.DefaultLanguage)}
		for _, l := range a.Languages {
			opts.Languages = append(opts.Languages, r(l))
		}
		var err error
		if cat, err = locale.Load(opts); err != nil {
			return fmt.Errorf("%s: %w", localeOptionOf(err, opts), err)
		}
		logGaps(a.logger, cat)
	}
	cfg.Locale, ccfg.Locale = cat, cat
	return nil
}

// localeOptionOf names the option behind a catalogue error.
func localeOptionOf(err error, opts locale.Options) string {
	def, _ := locale.Canonical(opts.Default)
	switch msg := err.Error(); {
	case strings.Contains(msg, "default language"), def != "" && strings.Contains(msg, fmt.Sprintf("language %q:", def)):
		return "default_language"
	case opts.Dir != "" && strings.Contains(msg, opts.Dir) && !strings.Contains(msg, "no file for it in"):
		return "translations_dir"
	case strings.HasPrefix(msg, "locale: language ") || strings.Contains(msg, "is not a language tag"):
		return "languages"
	}
	return "translations_dir"
}

// logGaps tells the operator what an added language lacks (English shows
// instead).
func logGaps(logger *zap.Logger, cat *locale.Catalog) {
	gaps := cat.Gaps()
	langs := make([]string, 0, len(gaps))
	for l := range gaps {
		langs = append(langs, l)
	}
	sort.Strings(langs)
	for _, l := range langs {
		missing := gaps[l]
		shown := missing
		if len(shown) > 10 {
			shown = shown[:10]
		}
		logger.Warn("language without a translation for some texts: English is shown for them",
			zap.String("language", l), zap.Int("missing", len(missing)), zap.Strings("first", shown))
	}
}

// unmarshalLocaleTopic reads the languages' subdirectives of the kratos
// global option (known is false for any other).
func (a *App) unmarshalLocaleTopic(o *globalOption) (known bool, err error) {
	switch o.name {
	case "translations_dir", "languages", "default_language":
		return true, a.unmarshalLocaleOption(o.d, o.name)
	}
	return false, nil
}
