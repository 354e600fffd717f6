package locale

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// formats are a language's conventions for dates and numbers.
type formats struct {
	// DateTime and Date are Go layouts in which "Jan" stands for the
	// language's month name (Months).
	DateTime string
	Date     string
	Months   [12]string
	// Decimal is the decimal separator.
	Decimal string
}

// builtinFormats follow CLDR's medium date and time patterns.
var builtinFormats = map[string]*formats{
	// English keeps the pages' format of today ("2 Jan 2006, 15:04 UTC").
	"en": {DateTime: "2 Jan 2006, 15:04 MST", Date: "2 Jan 2006", Decimal: ".",
		Months: [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}},
	"de": {DateTime: "2. Jan 2006, 15:04 MST", Date: "2. Jan 2006", Decimal: ",",
		Months: [12]string{"Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.", "Nov.", "Dez."}},
	"fr": {DateTime: "2 Jan 2006, 15:04 MST", Date: "2 Jan 2006", Decimal: ",",
		Months: [12]string{"janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."}},
	"es": {DateTime: "2 Jan 2006, 15:04 MST", Date: "2 Jan 2006", Decimal: ",",
		Months: [12]string{"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"}},
	"pt": {DateTime: "2 'de' Jan 'de' 2006, 15:04 MST", Date: "2 'de' Jan 'de' 2006", Decimal: ",",
		Months: [12]string{"jan.", "fev.", "mar.", "abr.", "mai.", "jun.", "jul.", "ago.", "set.", "out.", "nov.", "dez."}},
}

// format renders t with layout: Go's layout with "Jan" (or "January")
// replaced by the month name and '…' quoting literal text (so that words such as "de" can
// never be read as layout elements).
func (f *formats) format(t time.Time, layout string) string {
	var b strings.Builder
	for layout != "" {
		switch {
		case layout[0] == '\'':
			end := strings.IndexByte(layout[1:], '\'')
			if end < 0 {
				b.WriteString(layout[1:])
				return b.String()
			}
			b.WriteString(layout[1 : 1+end])
			layout = layout[2+end:]
		case strings.HasPrefix(layout, "January"):
			b.WriteString(f.Months[t.Month()-1])
			layout = layout[7:]
		case strings.HasPrefix(layout, "Jan"):
			b.WriteString(f.Months[t.Month()-1])
			layout = layout[3:]
		default:
			n := len(layout)
			if i := strings.IndexAny(layout, "'J"); i > 0 {
				n = i
			} else if i == 0 {
				n = 1 // a J that does not start "Jan"
			}
			b.WriteString(t.Format(layout[:n]))
			layout = layout[n:]
		}
	}
	return b.String()
}

func (f *formats) validate() error {
	if strings.TrimSpace(f.DateTime) == "" || strings.TrimSpace(f.Date) == "" {
		return errors.New("formats: datetime and date must not be empty")
	}
	for i, m := range f.Months {
		if strings.TrimSpace(m) == "" {
			return fmt.Errorf("formats: month %d is empty", i+1)
		}
	}
	if f.Decimal == "" {
		return errors.New("formats: decimal must not be empty")
	}
	return nil
}

// decimal renders x with places decimals and the language's separator
// ("%.2f" for English).
func (f *formats) decimal(v any, places int) (string, error) {
	x, err := toFloat(v)
	if err != nil {
		return "", err
	}
	if places < 0 || places > 6 {
		return "", fmt.Errorf("decimal: %d places", places)
	}
	s := strconv.FormatFloat(x, 'f', places, 64)
	if f.Decimal != "." {
		s = strings.Replace(s, ".", f.Decimal, 1)
	}
	return s, nil
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case json.Number:
		return x.Float64()
	case string:
		return strconv.ParseFloat(x, 64)
	case time.Duration:
		return x.Minutes(), nil
	}
	return 0, fmt.Errorf("not a number: %T", v)
}

// toTime reads a time from a flow context: a time.Time before the flow was
// stored, an RFC 3339 string after (or unix seconds).
func toTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case *time.Time:
		if x != nil {
			return *x, nil
		}
	case string:
		return time.Parse(time.RFC3339Nano, x)
	default:
		if f, err := toFloat(v); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return time.Unix(int64(f), 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %T", v)
}

// toStrings reads a list of strings ([]string, or []any after JSON).
func toStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return x, nil
	case string:
		return []string{x}, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, fmt.Errorf("not a list: %T", v)
	}
	out := make([]string, rv.Len())
	for i := range out {
		out[i] = fmt.Sprint(rv.Index(i).Interface())
	}
	return out, nil
}

// secretCode returns the code of one entry of 1050015's "secrets" (a
// 1050009 text), or "" for a used one (1050014). Entries are flow Texts or,
// after the flow was stored, their JSON maps.
func secretCode(v any) (string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return "", err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return "", fmt.Errorf("secret entry: %w", err)
		}
	}
	ctx, _ := m["context"].(map[string]any)
	if id, _ := toFloat(m["id"]); id == 1050014 {
		return "", nil
	}
	if _, used := ctx["used_at"]; used {
		return "", nil
	}
	if s, ok := ctx["secret"].(string); ok {
		return s, nil
	}
	s, _ := m["text"].(string)
	return s, nil
}
