package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP is a user's second factor for the browser login (RFC 6238: six
// digits, 30 seconds, SHA-1, as authenticator apps expect). Its secret is
// sealed with the tenant's data key. With it enabled, mail clients log in
// with app passwords only: the account password alone opens nothing.
type TOTP struct {
	Sealed  []byte    `json:"sealed"`
	Enabled time.Time `json:"enabled"`
	// Last is the time step of the last code accepted; a code of that
	// step or an earlier one is refused, so a code seen is no use.
	Last uint64 `json:"last,omitempty"`
}

const totpPeriod = 30

func totpPurpose(login string) string { return "totp " + login }

// NewTOTPKey makes a fresh secret for login and returns it (base32) with
// its otpauth:// URL, which authenticator apps read from a QR code.
// Nothing is stored until EnableTOTP gets a code made from it.
func (t *Tenant) NewTOTPKey(login string) (secret, url string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: "mailvault " + t.Name, AccountName: strings.ToLower(login), Period: totpPeriod})
	if err != nil {
		return "", "", fmt.Errorf("make TOTP secret: %w", err)
	}
	return k.Secret(), k.URL(), nil
}

// totpStep returns the time step at now whose code is code, within one
// step either way (clock drift), or false.
func totpStep(secret, code string, now time.Time) (uint64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	c := uint64(now.Unix()) / totpPeriod
	for _, s := range []uint64{c, c - 1, c + 1} {
		ok, err := hotp.ValidateCustom(code, s, secret, hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && ok {
			return s, true
		}
	}
	return 0, false
}

// EnableTOTP turns the second factor on with secret, once code shows the
// user's app makes the same codes.
func (t *Tenant) EnableTOTP(ctx context.Context, login, secret, code string) error {
	step, ok := totpStep(secret, code, time.Now())
	if !ok {
		return fmt.Errorf("%w: the code does not match; check the time on the device", ErrInvalid)
	}
	login = strings.ToLower(login)
	err := t.UpdateUser(ctx, login, func(u *User) error {
		if u.TOTP != nil {
			return fmt.Errorf("two-step login of %s: %w", login, ErrExists)
		}
		u.TOTP = &TOTP{Sealed: t.Seal(totpPurpose(login), []byte(secret)), Enabled: time.Now().UTC(), Last: step}
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "totp-enable", login)
	}
	return err
}

// HasTOTP reports whether login has a second factor.
func (t *Tenant) HasTOTP(login string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	u := t.users[strings.ToLower(login)]
	return u != nil && u.TOTP != nil
}

// CheckTOTP checks a code of login's second factor. Wrong codes are
// counted by the login gate like wrong passwords, under an account of
// their own (a correct password does not clear them), so six digits
// cannot be guessed.
func (t *Tenant) CheckTOTP(ctx context.Context, login, code string) error {
	login = strings.ToLower(login)
	at, err := t.p.gate.begin(ctx, "totp:"+login)
	if err != nil {
		return err
	}
	err = t.checkTOTP(ctx, login, code)
	at.end(err)
	return err
}

func (t *Tenant) checkTOTP(ctx context.Context, login, code string) error {
	err := t.UpdateUser(ctx, login, func(u *User) error {
		if u.TOTP == nil || !u.Active(time.Now()) {
			return ErrAuthFailed
		}
		secret, err := t.Unseal(totpPurpose(login), u.TOTP.Sealed)
		if err != nil {
			return fmt.Errorf("TOTP secret of %s: %w", login, err)
		}
		step, ok := totpStep(string(secret), code, time.Now())
		if !ok || step <= u.TOTP.Last {
			return ErrAuthFailed
		}
		cp := *u.TOTP
		cp.Last = step
		u.TOTP = &cp
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return ErrAuthFailed
	}
	return err
}

// DisableTOTP turns login's second factor off: by the user, with a
// current code (CheckTOTP first), or by an admin for a user who lost
// the device. Audited as the actor of ctx.
func (t *Tenant) DisableTOTP(ctx context.Context, login string) error {
	login = strings.ToLower(login)
	if t.RequiresTOTP() && strings.EqualFold(ActorOf(ctx), login) {
		return fmt.Errorf("%w: this archive requires two-step login; an admin can remove it for a lost device", ErrInvalid)
	}
	err := t.UpdateUser(ctx, login, func(u *User) error {
		if u.TOTP == nil {
			return fmt.Errorf("two-step login of %s: %w", login, ErrNotFound)
		}
		u.TOTP = nil
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "totp-disable", login)
	}
	return err
}

// requireTOTPKey is the setting that makes two-step login compulsory in
// the tenant.
const requireTOTPKey = "auth/require-totp"

// RequiresTOTP reports whether every user of the tenant must log in with
// a second factor.
func (t *Tenant) RequiresTOTP() bool {
	v, err := t.GetSetting(requireTOTPKey)
	return err == nil && string(v) == "1"
}

// SetRequireTOTP makes two-step login compulsory (or not) for every user
// of the tenant: a user without a second factor sets one up at the next
// browser login, and mail clients log in with app passwords only.
func (t *Tenant) SetRequireTOTP(ctx context.Context, on bool) error {
	var err error
	if on {
		err = t.PutSetting(ctx, requireTOTPKey, []byte("1"))
	} else {
		err = t.DeleteSetting(ctx, requireTOTPKey)
	}
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), "totp-require", fmt.Sprint(on))
	}
	return err
}

// needsAppPassword: a mail client of u must use an app password, as u
// has a second factor or the tenant requires one.
func (t *Tenant) needsAppPassword(u *User) bool {
	return u.TOTP != nil || t.RequiresTOTP()
}
