package courier

import (
	"bytes"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	texttemplate "text/template"

	"github.com/Masterminds/sprig/v3"
)

// TemplateID names a mail template: Kratos's template name plus variant.
// "invalid" variants go to addresses that belong to no identity (only sent
// when notify_unknown_recipients is on).
type TemplateID string

// Templates, named like Kratos's template types.
const (
	TemplateVerificationCodeValid   TemplateID = "verification_code_valid"
	TemplateVerificationCodeInvalid TemplateID = "verification_code_invalid"
	TemplateVerificationValid       TemplateID = "verification_valid" // link
	TemplateVerificationInvalid     TemplateID = "verification_invalid"
	TemplateRecoveryCodeValid       TemplateID = "recovery_code_valid"
	TemplateRecoveryCodeInvalid     TemplateID = "recovery_code_invalid"
	TemplateRecoveryValid           TemplateID = "recovery_valid" // link
	TemplateRecoveryInvalid         TemplateID = "recovery_invalid"
	TemplateLoginCodeValid          TemplateID = "login_code_valid"
	TemplateRegistrationCodeValid   TemplateID = "registration_code_valid"
)

// AllTemplates lists every known template.
var AllTemplates = []TemplateID{
	TemplateVerificationCodeValid, TemplateVerificationCodeInvalid,
	TemplateVerificationValid, TemplateVerificationInvalid,
	TemplateRecoveryCodeValid, TemplateRecoveryCodeInvalid,
	TemplateRecoveryValid, TemplateRecoveryInvalid,
	TemplateLoginCodeValid, TemplateRegistrationCodeValid,
}

// dir returns the template's directory ("recovery_code/valid").
func (id TemplateID) dir() string {
	s := string(id)
	i := strings.LastIndex(s, "_")
	if i < 0 {
		return s
	}
	return s[:i] + "/" + s[i+1:]
}

func (id TemplateID) valid() bool {
	for _, t := range AllTemplates {
		if t == id {
			return true
		}
	}
	return false
}

// TemplateData is what templates see, with Kratos's field names.
// Unset fields render empty.
type TemplateData struct {
	// To is the recipient address (set from Message.To when empty).
	To string
	// RecoveryCode / RecoveryURL: recovery_code / recovery (link) templates.
	RecoveryCode string
	RecoveryURL  string
	// VerificationCode / VerificationURL: verification_code (both) and
	// verification (link, URL only) templates.
	VerificationCode string
	VerificationURL  string
	// LoginCode: login_code. RegistrationCode: registration_code.
	LoginCode        string
	RegistrationCode string
	// Identity is the identity as a JSON-like map (id, traits, …); nil for
	// invalid variants.
	Identity map[string]any
	// RequestURL is the URL the flow was initiated with.
	RequestURL string
	// TransientPayload is the flow's transient_payload.
	TransientPayload map[string]any
	// ExpiresInMinutes is the code/link lifespan; 0 omits the expiry line.
	ExpiresInMinutes int
}

const (
	fileSubject   = "email.subject.gotmpl"
	fileBodyHTML  = "email.body.gotmpl"
	fileBodyPlain = "email.body.plaintext.gotmpl"
)

//go:embed templates
var builtinTemplates embed.FS

type compiledTemplate struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// templateSet is the templates of one language. The base set (no
// language) is the operator's: each file from Config.Templates, else
// TemplateOverridePath, else the built-in English one.
type templateSet struct {
	byID map[TemplateID]*compiledTemplate
	// sources are the base set's sources by template and file, and
	// overridden the templates the operator changed any file of
	// (translations.go).
	sources    map[TemplateID]map[string]templateSource
	overridden map[TemplateID]bool
}

// templateSource is the text of one template file and its name (the path,
// or builtin:<dir>/<file>).
type templateSource struct {
	text, name string
}

// rendered is one rendered message.
type rendered struct {
	Subject, Text, HTML string
}

// sampleData exercises every field so that override templates referring to
// unknown fields fail at start-up instead of at first send.
var sampleData = TemplateData{
	To:               "user@example.com",
	RecoveryCode:     "123456",
	RecoveryURL:      "https://example.com/recovery",
	VerificationCode: "123456",
	VerificationURL:  "https://example.com/verification",
	LoginCode:        "123456",
	RegistrationCode: "123456",
	Identity:         map[string]any{"id": "00000000-0000-0000-0000-000000000000", "traits": map[string]any{"email": "user@example.com"}},
	RequestURL:       "https://example.com/self-service/recovery/browser",
	TransientPayload: map[string]any{},
	ExpiresInMinutes: 60,
}

func loadTemplates(overrideDir string, overrides map[string]TemplateFiles) (*templateSet, error) {
	perID := make(map[TemplateID]TemplateFiles, len(overrides))
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		id := TemplateID(strings.ReplaceAll(strings.ReplaceAll(k, ".", "_"), "/", "_"))
		if !id.valid() {
			return nil, &ConfigError{Field: "templates", Err: fmt.Errorf("unknown template %q (known: %s)", k, knownTemplates())}
		}
		perID[id] = overrides[k]
	}
	if overrideDir != "" {
		st, err := os.Stat(overrideDir)
		if err != nil {
			return nil, &ConfigError{Field: "template_override_path", Err: err}
		}
		if !st.IsDir() {
			return nil, &ConfigError{Field: "template_override_path", Err: fmt.Errorf("%s is not a directory", overrideDir)}
		}
	}

	ts := &templateSet{byID: make(map[TemplateID]*compiledTemplate, len(AllTemplates)),
		sources: make(map[TemplateID]map[string]templateSource, len(AllTemplates)), overridden: map[TemplateID]bool{}}
	for _, id := range AllTemplates {
		files := perID[id]
		ts.sources[id] = make(map[string]templateSource, 3)
		for _, f := range []struct{ explicit, file string }{
			{files.Subject, fileSubject}, {files.BodyPlaintext, fileBodyPlain}, {files.BodyHTML, fileBodyHTML},
		} {
			text, name, err := loadSource(id, overrideDir, f.explicit, f.file)
			if err != nil {
				return nil, err
			}
			ts.sources[id][f.file] = templateSource{text: text, name: name}
			if !strings.HasPrefix(name, "builtin:") {
				ts.overridden[id] = true
			}
		}
		src := ts.sources[id]
		ct, err := compileTemplate(id, src[fileSubject], src[fileBodyPlain], src[fileBodyHTML])
		if err != nil {
			return nil, err
		}
		ts.byID[id] = ct
	}
	return ts, nil
}

// compileTemplate parses the three files of template id and renders them
// once with sampleData, so that a broken or unknown field fails at start.
func compileTemplate(id TemplateID, subject, text, html templateSource) (*compiledTemplate, error) {
	ct := &compiledTemplate{}
	var err error
	if ct.subject, err = texttemplate.New(subject.name).Funcs(sprig.HermeticTxtFuncMap()).Parse(subject.text); err != nil {
		return nil, &ConfigError{Field: "templates." + string(id), Err: err}
	}
	if ct.text, err = texttemplate.New(text.name).Funcs(sprig.HermeticTxtFuncMap()).Parse(text.text); err != nil {
		return nil, &ConfigError{Field: "templates." + string(id), Err: err}
	}
	if ct.html, err = htmltemplate.New(html.name).Funcs(sprig.HermeticHtmlFuncMap()).Parse(html.text); err != nil {
		return nil, &ConfigError{Field: "templates." + string(id), Err: err}
	}
	if _, err := ct.render(sampleData); err != nil {
		return nil, &ConfigError{Field: "templates." + string(id), Err: err}
	}
	return ct, nil
}

// loadSource reads one file of template id: the explicit source of
// Config.Templates, else the file of TemplateOverridePath, else the
// built-in one.
func loadSource(id TemplateID, overrideDir, explicit, file string) (string, string, error) {
	if explicit != "" {
		src, err := readTemplateSource(explicit)
		if err != nil {
			return "", "", &ConfigError{Field: "templates." + string(id), Err: err}
		}
		return src, explicit, nil
	}
	if overrideDir != "" {
		p := filepath.Join(overrideDir, filepath.FromSlash(id.dir()), file)
		b, err := os.ReadFile(p) // #nosec G304 -- template_override_path is operator configuration
		if err == nil {
			return string(b), p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", "", &ConfigError{Field: "template_override_path", Err: err}
		}
	}
	b, err := builtinTemplates.ReadFile("templates/" + id.dir() + "/" + file)
	if err != nil {
		return "", "", fmt.Errorf("courier: built-in template %s/%s: %w", id.dir(), file, err)
	}
	return string(b), "builtin:" + id.dir() + "/" + file, nil
}

func knownTemplates() string {
	s := make([]string, len(AllTemplates))
	for i, t := range AllTemplates {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// readTemplateSource reads a path, file:// URL or base64:// inline template.
func readTemplateSource(src string) (string, error) {
	switch {
	case strings.HasPrefix(src, "base64://"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "base64://"))
		if err != nil {
			b, err = base64.URLEncoding.DecodeString(strings.TrimPrefix(src, "base64://"))
		}
		if err != nil {
			return "", fmt.Errorf("invalid base64 template: %w", err)
		}
		return string(b), nil
	case strings.HasPrefix(src, "file://"):
		src = strings.TrimPrefix(src, "file://")
	case strings.Contains(src, "://"):
		return "", fmt.Errorf("unsupported template source %q (want a path, file:// or base64://)", src)
	}
	b, err := os.ReadFile(src) // #nosec G304 -- template files named in the Caddyfile are operator configuration
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (t *templateSet) render(id TemplateID, data TemplateData) (rendered, error) {
	ct, ok := t.byID[id]
	if !ok {
		return rendered{}, fmt.Errorf("courier: unknown template %q", id)
	}
	r, err := ct.render(data)
	if err != nil {
		return rendered{}, fmt.Errorf("courier: render %s: %w", id, err)
	}
	return r, nil
}

func (ct *compiledTemplate) render(data TemplateData) (rendered, error) {
	var r rendered
	var b bytes.Buffer
	if err := ct.subject.Execute(&b, data); err != nil {
		return r, err
	}
	r.Subject = strings.Join(strings.Fields(b.String()), " ")
	b.Reset()
	if err := ct.text.Execute(&b, data); err != nil {
		return r, err
	}
	r.Text = b.String()
	b.Reset()
	if err := ct.html.Execute(&b, data); err != nil {
		return r, err
	}
	r.HTML = b.String()
	if r.Subject == "" {
		return r, errors.New("subject renders empty")
	}
	return r, nil
}
