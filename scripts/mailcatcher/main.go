// Command mailcatcher is a tiny SMTP sink with the two read endpoints of
// mailpit's HTTP API that ../shared/tools/capture.py uses
// (/api/v1/search?query=to:"addr" and /api/v1/message/<id>), so the
// compatibility capture runs without installing mailpit. Loopback only.
//
//	go run ./scripts/mailcatcher -smtp 127.0.0.1:1025 -http 127.0.0.1:8025
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

type message struct {
	ID      string
	To      []string
	Subject string
	Created time.Time
	Text    string
}

type box struct {
	mu   sync.Mutex
	msgs []*message
}

func (b *box) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{box: b}, nil }

type session struct {
	box *box
	to  []string
}

func (s *session) AuthPlain(string, string) error            { return nil }
func (s *session) Mail(string, *smtp.MailOptions) error      { return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error { s.to = append(s.to, to); return nil }
func (s *session) Reset()                                    { s.to = nil }
func (s *session) Logout() error                             { return nil }

func (s *session) Data(r io.Reader) error {
	m, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(m.Header.Get("Subject"))
	text := plainText(m.Header.Get("Content-Type"), m.Body)
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.msgs = append(s.box.msgs, &message{ID: fmt.Sprintf("m%d", len(s.box.msgs)+1), To: s.to,
		Subject: subject, Created: time.Now().UTC(), Text: text})
	return nil
}

// plainText returns the text/plain part of a message (or its whole body).
func plainText(ct string, body io.Reader) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			pt, pp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
			if strings.HasPrefix(pt, "multipart/") {
				if s := plainText(p.Header.Get("Content-Type"), p); s != "" {
					return s
				}
				_ = pp
				continue
			}
			if pt == "text/plain" {
				b, _ := io.ReadAll(decodeTransfer(p.Header.Get("Content-Transfer-Encoding"), p))
				return string(b)
			}
		}
		return ""
	}
	b, _ := io.ReadAll(body)
	return string(b)
}

func decodeTransfer(enc string, r io.Reader) io.Reader {
	if strings.EqualFold(enc, "quoted-printable") {
		return newQP(r)
	}
	return r
}

func main() {
	smtpAddr := flag.String("smtp", "127.0.0.1:1025", "SMTP listen address")
	httpAddr := flag.String("http", "127.0.0.1:8025", "HTTP API listen address")
	flag.Parse()
	b := &box{}
	s := smtp.NewServer(b)
	s.Addr, s.Domain, s.AllowInsecureAuth = *smtpAddr, "localhost", true
	go func() { log.Fatal(s.ListenAndServe()) }()
	http.HandleFunc("/api/v1/search", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		addr := strings.Trim(strings.TrimPrefix(q, "to:"), `"`)
		b.mu.Lock()
		out := []map[string]any{}
		for _, m := range b.msgs {
			for _, t := range m.To {
				if strings.EqualFold(t, addr) {
					out = append(out, map[string]any{"ID": m.ID, "Subject": m.Subject, "Created": m.Created.Format(time.RFC3339Nano)})
				}
			}
		}
		b.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"messages": out})
	})
	http.HandleFunc("/api/v1/message/", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/api/v1/message/")
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, m := range b.msgs {
			if m.ID == id {
				_ = json.NewEncoder(w).Encode(map[string]any{"ID": m.ID, "Subject": m.Subject, "Text": m.Text})
				return
			}
		}
		http.NotFound(w, r)
	})
	log.Printf("mailcatcher: smtp %s, http %s", *smtpAddr, *httpAddr)
	log.Fatal(http.ListenAndServe(*httpAddr, nil))
}
