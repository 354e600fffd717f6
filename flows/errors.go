package flows

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is a Kratos (herodot) error: the body of errorGeneric. Extra holds
// top-level siblings of "error" for the enhanced variants (use_flow_id,
// redirect_browser_to, expired_at, since).
type Error struct {
	ID      string         `json:"id,omitempty"`
	Code    int            `json:"code"`
	Status  string         `json:"status"`
	Reason  string         `json:"reason,omitempty"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	Request string         `json:"request,omitempty"`

	extra map[string]any
	// retryAfter, when set, becomes the Retry-After header (429s).
	retryAfter int
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return e.Message + ": " + e.Reason
	}
	return e.Message
}

// newError builds an error with the standard message for code.
func newError(code int, id, message, reason string) *Error {
	if message == "" {
		message = defaultErrorMessage(code)
	}
	return &Error{ID: id, Code: code, Status: http.StatusText(code), Message: message, Reason: reason}
}

func (e *Error) withDetail(k string, v any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[k] = v
	return e
}

func (e *Error) withExtra(k string, v any) *Error {
	if e.extra == nil {
		e.extra = map[string]any{}
	}
	e.extra[k] = v
	return e
}

func defaultErrorMessage(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "The request was malformed or contained invalid parameters"
	case http.StatusUnauthorized:
		return "The request could not be authorized"
	case http.StatusForbidden:
		return "The requested action was forbidden"
	case http.StatusNotFound:
		return "The requested resource could not be found"
	case http.StatusMethodNotAllowed:
		return "The request method is not allowed"
	case http.StatusConflict:
		return "Unable to process the request because it conflicts with the current state"
	case http.StatusGone:
		return "The requested resource is no longer available"
	case http.StatusRequestEntityTooLarge:
		return "The request body is too large"
	case http.StatusUnprocessableEntity:
		return "The request was well-formed but was unable to be followed due to semantic errors"
	case http.StatusTooManyRequests:
		return "Too many requests"
	default:
		return "An internal server error occurred, please contact the system administrator"
	}
}

// The errors Kratos answers with, by constructor. Texts are Kratos's.
func errNotFound() *Error {
	return newError(http.StatusNotFound, "", "Unable to locate the resource", "")
}

func errBadRequest(reason string) *Error {
	return newError(http.StatusBadRequest, "", "", reason)
}

func errSessionInactiveFlow() *Error {
	return newError(http.StatusUnauthorized, "session_inactive", "request does not have a valid authentication session", "No active session was found in this request.")
}

func errNoCredentials() *Error {
	return newError(http.StatusUnauthorized, "", "", "No valid session credentials found in the request.")
}

func errSessionAlreadyAvailable() *Error {
	return newError(http.StatusBadRequest, "session_already_available", "you are already logged in", "A valid session was detected and thus login is not possible. Did you forget to set `?refresh=true`?")
}

func errAAL1Required() *Error {
	return newError(http.StatusUnauthorized, "session_aal1_required", "aal2 and aal3 can only be requested if a session exists already", "You can not requested a higher AAL (AAL2/AAL3) without an active session.")
}

func errAAL2Required(redirect string) *Error {
	e := newError(http.StatusForbidden, "session_aal2_required", "Session does not fulfill the requested Authenticator Assurance Level",
		"An active session was found but it does not fulfill the Authenticator Assurance Level, implying that the session must (re-)authenticate using a second factor or higher. Please complete the second factor challenge.")
	return e.withDetail("redirect_browser_to", redirect).withExtra("redirect_browser_to", redirect)
}

func errReturnToForbidden(u string) *Error {
	return newError(http.StatusBadRequest, "self_service_flow_return_to_forbidden", "", fmt.Sprintf("Requested return_to URL %q is not allowed.", u))
}

func errFlowDisabled(reason string) *Error {
	return newError(http.StatusBadRequest, "self_service_flow_disabled", "", reason)
}

func errBrowserLocationChange(to string) *Error {
	e := newError(http.StatusUnprocessableEntity, "browser_location_change_required", "browser location change required", "In order to complete this flow please redirect the browser to: "+to)
	return e.withExtra("redirect_browser_to", to)
}

func errFlowExpired(expiredAt time.Time, details map[string]any) *Error {
	since := time.Since(expiredAt)
	e := newError(http.StatusGone, "self_service_flow_expired", "self-service flow expired",
		fmt.Sprintf("The self-service flow expired %.2f minutes ago, initialize a new one.", since.Minutes()))
	e.Details = details
	e.withExtra("expired_at", expiredAt.UTC())
	e.withExtra("since", int64(since))
	return e
}

const csrfReason = "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other serious security issues."

func errCSRF(rejectReason string) *Error {
	e := newError(http.StatusForbidden, "security_csrf_violation", "the request was rejected to protect you from Cross-Site-Request-Forgery", csrfReason)
	e.withDetail("docs", "https://www.ory.com/docs/troubleshooting/csrf")
	e.withDetail("hint", "We detected a regular browser or server-side call. To debug browser calls check your Browser's Network Tab to see what cookies are included or excluded. If you are calling from a server ensure that the appropriate cookies are being forwarded and that the SDK method is called correctly.")
	e.withDetail("reject_reason", rejectReason)
	return e
}

func errInternal(reason string) *Error {
	return newError(http.StatusInternalServerError, "", "", reason)
}

// writeJSON writes v with Kratos's success content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, nil, orUnavailable(err, "unable to encode response"))
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes e in Kratos's error shape with the Ory-Error-Id header
// (present and empty when e has no id, as Kratos does).
func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	if r != nil {
		if id := r.Header.Get("X-Request-Id"); id != "" && e.Request == "" {
			e.Request = id
		}
	}
	body := map[string]any{"error": e}
	for k, v := range e.extra {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		b = []byte(`{"error":{"code":500,"status":"Internal Server Error","message":"An internal server error occurred, please contact the system administrator"}}`)
		e.Code = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h["Ory-Error-Id"] = []string{e.ID}
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.WriteHeader(e.Code)
	_, _ = w.Write(b)
}
