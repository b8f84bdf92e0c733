package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/buntdb"
)

// MinPasswordLength is the shortest password an administrator may set for
// a local user or an auditor account.
const MinPasswordLength = 8

// CheckNewPassword refuses a password too short to be set.
func CheckNewPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < MinPasswordLength {
		return fmt.Errorf("%w: a password needs at least %d characters (this one has %d)", ErrInvalid, MinPasswordLength, n)
	}
	return nil
}

// activeUnscopedLocked is a user who may act in the tenant by role: active
// and no auditor account (those read their scope and do nothing else).
func (t *Tenant) activeUnscopedLocked(login string) bool {
	u := t.users[login]
	return u != nil && u.Active(time.Now()) && u.Scope == nil
}

// MayAdminister reports whether login manages the tenant (users, groups,
// archive mailboxes, grants, directory sync): an active admin, directly or
// by a group. Administering reads no mail.
func (t *Tenant) MayAdminister(login string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.activeUnscopedLocked(login) && slices.Contains(t.rolesLocked(login), RoleAdmin)
}

// MayManageRetention reports whether login manages retention policies,
// legal holds and deletions: an active compliance user.
func (t *Tenant) MayManageRetention(login string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.activeUnscopedLocked(login) && slices.Contains(t.rolesLocked(login), RoleCompliance)
}

// MayReadAudit reports whether login reads the audit log: an active
// admin, compliance user or auditor (the role). Auditor accounts do not:
// the log names mailboxes and people outside their scope.
func (t *Tenant) MayReadAudit(login string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.activeUnscopedLocked(login) {
		return false
	}
	roles := t.rolesLocked(login)
	return slices.Contains(roles, RoleAdmin) || slices.Contains(roles, RoleCompliance) || slices.Contains(roles, RoleAuditor)
}

// SetDisabled disables a user (no login, no reading, by any protocol) or
// enables them again. Their archive mailbox stays as it is.
func (t *Tenant) SetDisabled(ctx context.Context, login string, disabled bool) error {
	login = strings.ToLower(strings.TrimSpace(login))
	err := t.UpdateUser(ctx, login, func(u *User) error {
		u.Disabled = disabled
		return nil
	})
	if err == nil {
		t.Audit(ctx, ActorOf(ctx), map[bool]string{true: "user-disable", false: "user-enable"}[disabled], login)
	}
	return err
}

// AuditFilter selects audit entries; empty fields match everything. Actor
// and Action match exactly (Action also as a prefix ending in "-": "hold-"
// matches hold-place and hold-lift), Text anywhere in the detail, case
// ignored.
type AuditFilter struct {
	Actor, Action, Text string
	Since, Until        time.Time // entry time in [Since, Until)
}

func (f *AuditFilter) match(e *AuditEntry) bool {
	if f.Actor != "" && !strings.EqualFold(e.Actor, f.Actor) {
		return false
	}
	if f.Action != "" && e.Action != f.Action && !(strings.HasSuffix(f.Action, "-") && strings.HasPrefix(e.Action, f.Action)) {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) || !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	return f.Text == "" || strings.Contains(strings.ToLower(e.Detail), strings.ToLower(f.Text))
}

// rawMiss reports whether the stored JSON of an entry cannot match f, by
// looking for the actor and the words in its text before decoding it:
// a search of a long log for something rare decodes only the entries
// that may match. It only rules out; match decides.
func (f *AuditFilter) rawMiss(raw string) bool {
	if f.Action != "" && plainASCII(f.Action) {
		// The action as encoding/json writes the field (an exact one
		// with its closing quote).
		needle := `"action":"` + f.Action
		if !strings.HasSuffix(f.Action, "-") {
			needle += `"`
		}
		if !strings.Contains(raw, needle) {
			return true
		}
	}
	for _, needle := range [...]string{f.Actor, f.Text} {
		if needle != "" && plainASCII(needle) && !containsFoldASCII(raw, needle) {
			return true
		}
	}
	return false
}

// plainASCII: s is ASCII that JSON writes as it is (no quotes,
// backslashes, controls, or the <, >, & encoding/json escapes).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// containsFoldASCII is strings.Contains with ASCII letters matched in
// either case, without allocating.
func containsFoldASCII(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			a, b := s[i+j], sub[j]
			if a != b && lowerASCII(a) != lowerASCII(b) {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// AuditPage returns up to limit entries matching f, newest first, with
// Seq < before (0: from the newest), and the before of the next page (0
// when there is none).
func (t *Tenant) AuditPage(f AuditFilter, before uint64, limit int) ([]AuditEntry, uint64, error) {
	var out []AuditEntry
	var next uint64
	pivot := auditKey(before)
	if before == 0 {
		pivot = "audit:~"
	}
	err := t.db.View(func(tx *buntdb.Tx) error {
		var ierr error
		tx.DescendLessOrEqual("", pivot, func(k, v string) bool {
			if !strings.HasPrefix(k, "audit:") {
				return false
			}
			if k == pivot || f.rawMiss(v) {
				return true
			}
			var e AuditEntry
			if ierr = json.Unmarshal([]byte(v), &e); ierr != nil {
				return false
			}
			if !f.match(&e) {
				return true
			}
			if len(out) == limit {
				next = out[len(out)-1].Seq
				return false
			}
			out = append(out, e)
			return true
		})
		return ierr
	})
	return out, next, err
}

// Usage is what the provider bills a tenant by: messages and bytes
// archived, users and archive mailboxes. Cheap: no walk over the
// messages beyond those the index has not caught up with.
type Usage struct {
	Messages  int64 `json:"messages"`
	Bytes     int64 `json:"bytes"`
	Users     int   `json:"users"`
	Mailboxes int   `json:"mailboxes"`
	IndexLag  int   `json:"index_lag"`
}

// Usage returns the tenant's usage.
func (t *Tenant) Usage() Usage {
	u := t.usage()
	t.mu.RLock()
	defer t.mu.RUnlock()
	return Usage{Messages: u.messages - int64(t.deletedCount), Bytes: u.bytes, Users: len(t.users), Mailboxes: len(t.mailboxes), IndexLag: u.indexLag}
}
