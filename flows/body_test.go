package flows

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
// used up, the next large body waits and is refused (errBodiesBusy), while
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
	if _, _, err := readBody(r); !errors.Is(err, errBodiesBusy) {
		t.Fatalf("second large body while the first is held: err %v, want errBodiesBusy", err)
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

// A password too long to match is a wrong password that costs what a
// wrong password costs: no early answer that would tell an identity with
// a bcrypt hash from an unknown one, and the long input is never hashed.
func TestVerifyOverlongPasswordCostsAWrongPassword(t *testing.T) {
	h, err := newHasher("bcrypt", 10)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := h.compute("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	timeOf := func(pw string) time.Duration {
		best := time.Hour
		for range 3 {
			start := time.Now()
			ok, err := h.verify(ctx, pw, stored)
			if err != nil || ok {
				t.Fatalf("verify(%d bytes) = %v, %v; want a mismatch", len(pw), ok, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong := timeOf("wrong horse battery")
	for _, n := range []int{73, maxPasswordBytes + 1, 1 << 20} {
		if d := timeOf(strings.Repeat("p", n)); d < wrong/3 {
			t.Errorf("a %d-byte password took %v, a wrong password %v: the answer tells them apart", n, d, wrong)
		}
	}
	if got := passwordLimit(stored); got != 72 {
		t.Errorf("passwordLimit(bcrypt) = %d, want 72", got)
	}
	if got := passwordLimit("$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$a2V5"); got != maxPasswordBytes {
		t.Errorf("passwordLimit(argon2id) = %d, want %d", got, maxPasswordBytes)
	}
}
