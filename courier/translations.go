package courier

import (
	"context"
	"fmt"

	"github.com/caddy-kratos/caddy-kratos/locale"
)

// Mails go out in the language of the person who asked for them: the
// message's Lang, else the language of the request that queued it
// (locale.LanguageFrom, set by the engine), when the catalogue offers it,
// else the catalogue's default. The mail is rendered when it is queued, so
// the outbox holds it in that language.
//
// Each file of a template comes from, in order:
//
//  1. the translations directory's file for the language (locale.Catalog,
//     not built in);
//  2. for a template the operator changed (Config.Templates,
//     TemplateOverridePath; these have no language): the operator's
//     files and the built-in English ones, exactly as without languages;
//  3. the built-in translation (English: the courier's own templates).

// languageOf is the language msg is rendered in.
func (s *Settings) languageOf(ctx context.Context, msgLang string) string {
	lang := msgLang
	if lang == "" {
		lang = locale.LanguageFrom(ctx)
	}
	if l, ok := s.catalog.Choose(lang); ok {
		return l
	}
	return s.catalog.Default()
}

// templateIn returns template id in lang, compiled on first use (the
// sources were all checked at start: the catalogue's when it was loaded,
// the operator's by loadTemplates).
func (s *Settings) templateIn(id TemplateID, lang string) (*compiledTemplate, error) {
	base, ok := s.templates.byID[id]
	if !ok {
		return nil, fmt.Errorf("courier: unknown template %q", id)
	}
	key := lang + "/" + string(id)
	if ct, ok := s.byLang.Load(key); ok {
		return ct.(*compiledTemplate), nil
	}
	m, err := s.catalog.Mail(string(id), lang)
	if err != nil {
		return nil, fmt.Errorf("courier: %w", err)
	}
	own := false
	pick := func(f locale.MailFile, file string) templateSource {
		if !f.Builtin || (f.Lang != locale.English && !s.templates.overridden[id]) {
			own = true
			return templateSource{text: f.Text, name: f.Source}
		}
		return s.templates.sources[id][file]
	}
	subject, text, html := pick(m.Subject, fileSubject), pick(m.Plaintext, fileBodyPlain), pick(m.HTML, fileBodyHTML)
	ct := base // nothing of the language: the operator's set as it is
	if own {
		if ct, err = compileTemplate(id, subject, text, html); err != nil {
			return nil, fmt.Errorf("courier: %s in %s: %w", id, lang, err)
		}
	}
	s.byLang.Store(key, ct)
	return ct, nil
}

// renderIn renders template id in lang.
func (s *Settings) renderIn(id TemplateID, lang string, data TemplateData) (rendered, error) {
	ct, err := s.templateIn(id, lang)
	if err != nil {
		return rendered{}, err
	}
	r, err := ct.render(data)
	if err != nil {
		return rendered{}, fmt.Errorf("courier: render %s: %w", id, err)
	}
	return r, nil
}
