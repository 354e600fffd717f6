package passkey

import (
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
)

// CheckSelection refuses authenticator selections passkeys cannot
// work with.
func CheckSelection(residentKey, userVerification, attachment string) error {
	switch residentKey {
	case "required", "preferred":
	case "discouraged":
		return errors.New("flows: passkey resident_key discouraged: passkeys sign in without an identifier, which needs a discoverable (resident) credential; want required or preferred")
	default:
		return fmt.Errorf("flows: passkey resident_key %q: want required or preferred", residentKey)
	}
	switch userVerification {
	case "required", "preferred", "discouraged":
	default:
		return fmt.Errorf("flows: passkey user_verification %q: want required, preferred or discouraged", userVerification)
	}
	switch attachment {
	case "platform", "cross-platform", "any":
	default:
		return fmt.Errorf("flows: passkey attachment %q: want platform, cross-platform or any", attachment)
	}
	return nil
}

// Selection is the authenticator selection of passkey
// registrations.
func Selection(residentKey, userVerification, attachment string) protocol.AuthenticatorSelection {
	required := residentKey == "required"
	sel := protocol.AuthenticatorSelection{
		RequireResidentKey: &required,
		ResidentKey:        protocol.ResidentKeyRequirement(residentKey),
		UserVerification:   protocol.UserVerificationRequirement(userVerification),
	}
	if attachment != "any" {
		sel.AuthenticatorAttachment = protocol.AuthenticatorAttachment(attachment)
	}
	return sel
}
