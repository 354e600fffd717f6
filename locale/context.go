package locale

import "context"

// langKey is the context key of a request's language.
type langKey struct{}

// WithLanguage returns ctx carrying lang, the language of the request being
// served (Catalog.FromRequest). The engine sets it on the requests that may
// queue a mail, so the courier renders the mail in the language of the
// person who asked for it, without every flow passing it along.
func WithLanguage(ctx context.Context, lang string) context.Context {
	return context.WithValue(ctx, langKey{}, lang)
}

// LanguageFrom returns the language WithLanguage put in ctx, "" when none.
func LanguageFrom(ctx context.Context) string {
	s, _ := ctx.Value(langKey{}).(string)
	return s
}
