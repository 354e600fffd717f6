package locale

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"os"
	"path"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/Masterminds/sprig/v3"
)

// Mail templates: the courier's templates (Kratos's template types and
// variants) in every language, as Go template sources the courier compiles
// with its functions (sprig's hermetic set) and renders with its
// TemplateData. A language variant is chosen per file: the language's own
// file (translations directory, then built-in), then its truncations
// (de-CH → de), then English.

//go:embed mail
var mailFS embed.FS

// The three files of a template, named as Kratos names them.
const (
	MailSubject   = "email.subject.gotmpl"
	MailHTML      = "email.body.gotmpl"
	MailPlaintext = "email.body.plaintext.gotmpl"
)

var mailFileNames = []string{MailSubject, MailHTML, MailPlaintext}

// mailTemplateIDs are the courier's TemplateIDs.
var mailTemplateIDs = []string{
	"verification_code_valid", "verification_code_invalid",
	"verification_valid", "verification_invalid",
	"recovery_code_valid", "recovery_code_invalid",
	"recovery_valid", "recovery_invalid",
	"login_code_valid", "registration_code_valid",
}

// mailFields are the fields of the courier's TemplateData.
var mailFields = map[string]bool{
	"To": true, "RecoveryCode": true, "RecoveryURL": true, "VerificationCode": true, "VerificationURL": true,
	"LoginCode": true, "RegistrationCode": true, "Identity": true, "RequestURL": true,
	"TransientPayload": true, "ExpiresInMinutes": true,
}

// mailSample has every field of TemplateData, for the start-up check.
var mailSample = map[string]any{
	"To": "user@example.com", "RecoveryCode": "123456", "RecoveryURL": "https://example.com/recovery",
	"VerificationCode": "123456", "VerificationURL": "https://example.com/verification",
	"LoginCode": "123456", "RegistrationCode": "123456",
	"Identity":         map[string]any{"id": "00000000-0000-0000-0000-000000000000", "traits": map[string]any{"email": "user@example.com"}},
	"RequestURL":       "https://example.com/self-service/recovery/browser",
	"TransientPayload": map[string]any{}, "ExpiresInMinutes": 60,
}

// MailTemplateIDs lists the mail templates (the courier's TemplateIDs).
func MailTemplateIDs() []string { return append([]string(nil), mailTemplateIDs...) }

// mailDir is the template's directory: recovery_code_valid → recovery_code/valid.
func mailDir(id string) string {
	i := strings.LastIndex(id, "_")
	return id[:i] + "/" + id[i+1:]
}

func knownMail(id string) bool {
	for _, m := range mailTemplateIDs {
		if m == id {
			return true
		}
	}
	return false
}

type mailFile struct {
	text    string
	origin  string
	builtin bool
}

type mailSource struct {
	key  string // "<id>/<file>"
	path string
	text string
}

// MailFile is one file of a mail template.
type MailFile struct {
	// Text is the Go template source.
	Text string
	// Source names it: "builtin:de/recovery_code/valid/email.subject.gotmpl"
	// or the path of the operator's file.
	Source string
	// Lang is the language the file is in (after the fallback).
	Lang string
	// Builtin is false for a file of the translations directory. The
	// courier lets its own language-neutral overrides (templates,
	// template_override_path) win over built-in files only.
	Builtin bool
}

// Mail is a mail template in one language.
type Mail struct {
	Subject, HTML, Plaintext MailFile
}

// Mail returns template id (a courier TemplateID such as
// "recovery_code_valid") in lang, each file falling back to the parent
// language and then English.
func (c *Catalog) Mail(id, lang string) (Mail, error) {
	if !knownMail(id) {
		return Mail{}, fmt.Errorf("locale: unknown mail template %q (known: %s)", id, strings.Join(mailTemplateIDs, ", "))
	}
	ch := c.chain(lang)
	if len(ch) == 0 || ch[len(ch)-1].lang != English {
		ch = append(ch, c.bundles[English])
	}
	get := func(file string) (MailFile, error) {
		for _, b := range ch {
			if f, ok := b.mail[id+"/"+file]; ok {
				return MailFile{Text: f.text, Source: f.origin, Lang: b.lang, Builtin: f.builtin}, nil
			}
		}
		return MailFile{}, fmt.Errorf("locale: mail template %s has no %s", id, file)
	}
	var m Mail
	var err error
	if m.Subject, err = get(MailSubject); err != nil {
		return m, err
	}
	if m.HTML, err = get(MailHTML); err != nil {
		return m, err
	}
	m.Plaintext, err = get(MailPlaintext)
	return m, err
}

// Render renders the template with data (the courier's TemplateData or a
// map with its field names) the way the courier does: sprig's hermetic
// functions, the subject's whitespace collapsed, the HTML body escaped by
// html/template.
func (m Mail) Render(data any) (subject, text, html string, err error) {
	st, err := parseMailText(m.Subject.Source, m.Subject.Text)
	if err != nil {
		return "", "", "", err
	}
	tt, err := parseMailText(m.Plaintext.Source, m.Plaintext.Text)
	if err != nil {
		return "", "", "", err
	}
	ht, err := parseMailHTML(m.HTML.Source, m.HTML.Text)
	if err != nil {
		return "", "", "", err
	}
	var b bytes.Buffer
	if err := st.Execute(&b, data); err != nil {
		return "", "", "", err
	}
	subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := tt.Execute(&b, data); err != nil {
		return "", "", "", err
	}
	text = b.String()
	b.Reset()
	if err := ht.Execute(&b, data); err != nil {
		return "", "", "", err
	}
	return subject, text, b.String(), nil
}

func parseMailText(name, src string) (*texttemplate.Template, error) {
	return texttemplate.New(name).Funcs(sprig.HermeticTxtFuncMap()).Parse(src)
}

func parseMailHTML(name, src string) (*htmltemplate.Template, error) {
	return htmltemplate.New(name).Funcs(sprig.HermeticHtmlFuncMap()).Parse(src)
}

// checkMail parses one mail file, checks that it reads only TemplateData
// fields and renders it with sample data.
func checkMail(file, name, src string) error {
	var tree *parse.Tree
	var run func() error
	if file == MailHTML {
		t, err := parseMailHTML(name, src)
		if err != nil {
			return err
		}
		tree = t.Tree
		run = func() error { return t.Execute(&bytes.Buffer{}, mailSample) }
	} else {
		t, err := parseMailText(name, src)
		if err != nil {
			return err
		}
		tree = t.Tree
		run = func() error { return t.Execute(&bytes.Buffer{}, mailSample) }
	}
	fields, _ := templateRefs(tree)
	for _, f := range fields {
		if !mailFields[f] {
			return fmt.Errorf("unknown field {{.%s}} (the courier's fields: To, RecoveryCode, RecoveryURL, VerificationCode, VerificationURL, LoginCode, RegistrationCode, Identity, RequestURL, TransientPayload, ExpiresInMinutes)", f)
		}
	}
	return run()
}

// readMailDir reads <dir>/<template>/<variant>/<file> of one language.
func readMailDir(dir string) ([]*mailSource, error) {
	var out []*mailSource
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("locale: %w", err)
	}
	for _, n := range names {
		if skipName(n.Name()) {
			continue
		}
		np := filepath.Join(dir, n.Name())
		if !n.IsDir() {
			return nil, fmt.Errorf("locale: %s: unexpected (want <template>/<variant>/%s)", np, MailSubject)
		}
		variants, err := os.ReadDir(np)
		if err != nil {
			return nil, fmt.Errorf("locale: %w", err)
		}
		for _, v := range variants {
			if skipName(v.Name()) {
				continue
			}
			vp := filepath.Join(np, v.Name())
			id := n.Name() + "_" + v.Name()
			if !v.IsDir() || !knownMail(id) {
				return nil, fmt.Errorf("locale: %s: unknown mail template %s/%s (known: %s)", vp, n.Name(), v.Name(), strings.Join(mailTemplateIDs, ", "))
			}
			files, err := os.ReadDir(vp)
			if err != nil {
				return nil, fmt.Errorf("locale: %w", err)
			}
			for _, f := range files {
				if skipName(f.Name()) {
					continue
				}
				fp := filepath.Join(vp, f.Name())
				if f.IsDir() || (f.Name() != MailSubject && f.Name() != MailHTML && f.Name() != MailPlaintext) {
					return nil, fmt.Errorf("locale: %s: unexpected (want %s)", fp, strings.Join(mailFileNames, ", "))
				}
				b, err := readLimited(fp)
				if err != nil {
					return nil, err
				}
				if err := checkMail(f.Name(), fp, string(b)); err != nil {
					return nil, fmt.Errorf("locale: %s: %w", fp, err)
				}
				out = append(out, &mailSource{key: id + "/" + f.Name(), path: fp, text: string(b)})
			}
		}
	}
	return out, nil
}

func (b *bundle) addMail(srcs []*mailSource) error {
	for _, s := range srcs {
		if prev, ok := b.mail[s.key]; ok {
			return fmt.Errorf("locale: %s: also defined in %s", s.path, prev.origin)
		}
		b.mail[s.key] = &mailFile{text: s.text, origin: s.path}
	}
	return nil
}

// addBuiltinMail adds the embedded mail files (mail/<lang>/<template>/
// <variant>/<file>) where the translations directory has none.
func addBuiltinMail(bundles map[string]*bundle) error {
	files, err := walkFS(mailFS, "mail")
	if err != nil {
		return fmt.Errorf("locale: built-in mail: %w", err)
	}
	for _, p := range files {
		parts := strings.Split(p, "/") // mail, lang, template, variant, file
		if len(parts) != 5 {
			return fmt.Errorf("locale: built-in mail: unexpected %s", p)
		}
		b, ok := bundles[parts[1]]
		if !ok {
			return fmt.Errorf("locale: built-in mail: %s: no such language", p)
		}
		key := parts[2] + "_" + parts[3] + "/" + parts[4]
		if _, ok := b.mail[key]; ok {
			continue
		}
		src, err := mailFS.ReadFile(p)
		if err != nil {
			return fmt.Errorf("locale: built-in mail: %w", err)
		}
		b.mail[key] = &mailFile{text: string(src), origin: "builtin:" + path.Join(parts[1:]...), builtin: true}
	}
	return nil
}
