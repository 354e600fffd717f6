package wire

import (
	"fmt"
	"net/http"
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

// Error is the message, and the reason after a colon when there is one.
func (e *Error) Error() string {
	if e.Reason != "" {
		return e.Message + ": " + e.Reason
	}
	return e.Message
}

// NewError builds an error with the standard message for code.
func NewError(code int, id, message, reason string) *Error {
	if message == "" {
		message = defaultErrorMessage(code)
	}
	return &Error{ID: id, Code: code, Status: http.StatusText(code), Message: message, Reason: reason}
}

// WithDetail sets details[k] of the error body.
func (e *Error) WithDetail(k string, v any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[k] = v
	return e
}

// WithRetryAfter sets the Retry-After header (seconds) of the answer.
func (e *Error) WithRetryAfter(secs int) *Error {
	e.retryAfter = secs
	return e
}

// RetryAfter is the Retry-After the answer carries (0: none).
func (e *Error) RetryAfter() int { return e.retryAfter }

// WithExtra sets a top-level sibling of "error" in the body
// (use_flow_id, redirect_browser_to, …).
func (e *Error) WithExtra(k string, v any) *Error {
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

// NotFound is Kratos's 404.
func NotFound() *Error {
	return NewError(http.StatusNotFound, "", "Unable to locate the resource", "")
}

// BadRequest is a 400 with reason.
func BadRequest(reason string) *Error {
	return NewError(http.StatusBadRequest, "", "", reason)
}

// SessionInactive is session_inactive: the flow needs a session.
func SessionInactive() *Error {
	return NewError(http.StatusUnauthorized, "session_inactive", "request does not have a valid authentication session", "No active session was found in this request.")
}

// NoCredentials is whoami's 401 without a session.
func NoCredentials() *Error {
	return NewError(http.StatusUnauthorized, "", "", "No valid session credentials found in the request.")
}

// SessionAlreadyAvailable refuses a login flow to a signed-in client.
func SessionAlreadyAvailable() *Error {
	return NewError(http.StatusBadRequest, "session_already_available", "you are already logged in", "A valid session was detected and thus login is not possible. Did you forget to set `?refresh=true`?")
}

// AAL1Required refuses aal2 without a session.
func AAL1Required() *Error {
	return NewError(http.StatusUnauthorized, "session_aal1_required", "aal2 and aal3 can only be requested if a session exists already", "You can not requested a higher AAL (AAL2/AAL3) without an active session.")
}

// AAL2Required is session_aal2_required, sending browsers to redirect.
func AAL2Required(redirect string) *Error {
	e := NewError(http.StatusForbidden, "session_aal2_required", "Session does not fulfill the requested Authenticator Assurance Level",
		"An active session was found but it does not fulfill the Authenticator Assurance Level, implying that the session must (re-)authenticate using a second factor or higher. Please complete the second factor challenge.")
	return e.WithDetail("redirect_browser_to", redirect).WithExtra("redirect_browser_to", redirect)
}

// ReturnToForbidden refuses a return_to outside the allow-list.
func ReturnToForbidden(u string) *Error {
	return NewError(http.StatusBadRequest, "self_service_flow_return_to_forbidden", "", fmt.Sprintf("Requested return_to URL %q is not allowed.", u))
}

// FlowDisabled refuses a flow the configuration turned off.
func FlowDisabled(reason string) *Error {
	return NewError(http.StatusBadRequest, "self_service_flow_disabled", "", reason)
}

// BrowserLocationChange asks a JSON client to send the browser to to.
func BrowserLocationChange(to string) *Error {
	e := NewError(http.StatusUnprocessableEntity, "browser_location_change_required", "browser location change required", "In order to complete this flow please redirect the browser to: "+to)
	return e.WithExtra("redirect_browser_to", to)
}

// FlowExpired is self_service_flow_expired (410) with expired_at and since.
func FlowExpired(expiredAt time.Time, details map[string]any) *Error {
	since := time.Since(expiredAt)
	e := NewError(http.StatusGone, "self_service_flow_expired", "self-service flow expired",
		fmt.Sprintf("The self-service flow expired %.2f minutes ago, initialize a new one.", since.Minutes()))
	e.Details = details
	e.WithExtra("expired_at", expiredAt.UTC())
	e.WithExtra("since", int64(since))
	return e
}

const csrfReason = "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other serious security issues."

// CSRFViolation is security_csrf_violation with the reason the token was
// refused.
func CSRFViolation(rejectReason string) *Error {
	e := NewError(http.StatusForbidden, "security_csrf_violation", "the request was rejected to protect you from Cross-Site-Request-Forgery", csrfReason)
	e.WithDetail("docs", "https://www.ory.com/docs/troubleshooting/csrf")
	e.WithDetail("hint", "We detected a regular browser or server-side call. To debug browser calls check your Browser's Network Tab to see what cookies are included or excluded. If you are calling from a server ensure that the appropriate cookies are being forwarded and that the SDK method is called correctly.")
	e.WithDetail("reject_reason", rejectReason)
	return e
}

// Internal is a 500 with reason.
func Internal(reason string) *Error {
	return NewError(http.StatusInternalServerError, "", "", reason)
}
