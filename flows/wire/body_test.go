package wire

import (
	"bytes"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/budget"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A body announced larger than the cap is refused without being read; one
// that turns out larger (chunked) is refused after reading one byte more
// than the cap, never all of it.
func TestReadBodyCap(t *testing.T) {
	big := strings.Repeat("x", maxBodyBytes+100<<10)

	cr := &countingReader{r: strings.NewReader(big)}
	r := httptest.NewRequest("POST", "/", cr)
	r.ContentLength = int64(len(big))
	if _, _, err := readBody(r); !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("announced oversize: err %v, want errBodyTooLarge", err)
	}
	if cr.n != 0 {
		t.Errorf("announced oversize: %d bytes read, want 0", cr.n)
	}

	cr = &countingReader{r: strings.NewReader(big)}
	r = httptest.NewRequest("POST", "/", cr)
	r.ContentLength = -1
	if _, _, err := readBody(r); !errors.Is(err, errBodyTooLarge) {
		t.Fatalf("chunked oversize: err %v, want errBodyTooLarge", err)
	}
	if cr.n > maxBodyBytes+32<<10 {
		t.Errorf("chunked oversize: %d bytes read, want about the cap %d", cr.n, maxBodyBytes)
	}

	body := bytes.Repeat([]byte("y"), maxBodyBytes)
	r = httptest.NewRequest("POST", "/", bytes.NewReader(body))
	got, release, err := readBody(r)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("a body of exactly the cap: err %v, %d bytes", err, len(got))
	}
	release()
}

// Large bodies take a share of one budget while they are held; when it is
// used up, the next large body waits and is refused (ErrBodiesBusy), while
// small bodies are never held up.
func TestLargeBodiesShareABudget(t *testing.T) {
	saved := largeBodies
	t.Cleanup(func() { largeBodies = saved })
	// Room for one 1 MiB body (2 MiB with its decoded values), a short wait.
	largeBodies = budget.New(2*1024+1, 2*1024+1, 50*time.Millisecond)

	mib := bytes.Repeat([]byte("z"), 1<<20)
	r := httptest.NewRequest("POST", "/", bytes.NewReader(mib))
	_, release, err := readBody(r)
	if err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest("POST", "/", bytes.NewReader(mib))
	if _, _, err := readBody(r); !errors.Is(err, ErrBodiesBusy) {
		t.Fatalf("second large body while the first is held: err %v, want ErrBodiesBusy", err)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader(`{"method":"password"}`))
	if _, _, err := readBody(r); err != nil {
		t.Fatalf("small body while the budget is used up: %v", err)
	}
	release()
	r = httptest.NewRequest("POST", "/", bytes.NewReader(mib))
	_, release, err = readBody(r)
	if err != nil {
		t.Fatalf("large body after the first was released: %v", err)
	}
	release()
}

func FuzzDecodeBody(f *testing.F) {
	f.Add("application/json", []byte(`{"method":"password","identifier":"a@b.c","password":"x","traits":{"email":"a@b.c"}}`))
	f.Add("application/json", []byte(`{"method": "password", "identifier": `))
	f.Add("application/json", []byte(`["a"]`))
	f.Add("application/x-www-form-urlencoded", []byte("method=password&traits.email=a%40b.c&traits.name.first=A&csrf_token=x"))
	f.Add("application/x-www-form-urlencoded", []byte("a.b=1&a=2&x[]=1&x[]=2"))
	f.Add("multipart/form-data; boundary=XX", []byte("--XX\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\npassword\r\n--XX--\r\n"))
	f.Add("text/plain", []byte("method=password"))
	f.Add("", []byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		r := httptest.NewRequest("POST", "/self-service/login?flow=x", bytes.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		m, err := DecodeBody(r)
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
		if len(body) > maxBodyBytes && err == nil {
			t.Fatal("oversized body accepted")
		}
		// Whatever came in, field accessors never panic.
		_ = BodyString(m, "method")
		_ = BodyBool(m, "lookup_secret_reveal")
	})
}
