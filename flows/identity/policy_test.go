package identity

import (
	"testing"
)

func TestPasswordPolicy(t *testing.T) {
	cases := []struct {
		password string
		ids      []string
		want     int // 0: accepted
	}{
		{"short", nil, 4000032},
		{string(make([]byte, 73)), nil, 4000033},
		{"alice@example.com1", []string{"alice@example.com"}, 4000031},
		{"password", nil, 4000034},
		{"PassWord", nil, 4000034},
		{"iloveyou", nil, 4000034},
		{"qwertyuiop", nil, 4000034},
		{"Gx7!qVt2#pLr9$wZk4", []string{"alice@example.com"}, 0},
	}
	for _, c := range cases {
		got := PolicyViolation(c.password, c.ids, true)
		switch {
		case c.want == 0 && got != nil:
			t.Errorf("%q: rejected with %d", c.password, got.ID)
		case c.want != 0 && (got == nil || got.ID != c.want):
			t.Errorf("%q: got %v, want %d", c.password, got, c.want)
		}
	}
	if got := PolicyViolation("iloveyou", nil, false); got != nil {
		t.Errorf("breach check not disabled: %v", got)
	}
}

func TestCommonPasswordList(t *testing.T) {
	if len(commonPasswords) == 0 || len(commonPasswords)%8 != 0 {
		t.Fatalf("embedded list has %d bytes", len(commonPasswords))
	}
	if IsCommonPassword("Gx7!qVt2#pLr9$wZk4-not-common") {
		t.Fatal("false positive")
	}
}
