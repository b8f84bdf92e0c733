package jmap

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"git.sr.ht/~rockorager/go-jmap"
	"git.sr.ht/~rockorager/go-jmap/core"
	"git.sr.ht/~rockorager/go-jmap/mail"

	"github.com/mailvault/mailvault/backend"
)

// Capabilities we serve; anything else in "using" is unknownCapability.
const (
	capCore = string(jmap.CoreURI)
	capMail = string(mail.URI)
)

// sortOptions are the Email/query sort properties (index.Sort fields).
var sortOptions = []string{"receivedAt", "sentAt", "size", "from", "subject"}

// mailAccountCapability is urn:ietf:params:jmap:mail of an account.
// go-jmap's mail.Mail cannot say "no limit" (null) for the first two.
type mailAccountCapability struct {
	MaxMailboxesPerEmail       *uint64  `json:"maxMailboxesPerEmail"`
	MaxMailboxDepth            *uint64  `json:"maxMailboxDepth"`
	MaxSizeMailboxName         uint64   `json:"maxSizeMailboxName"`
	MaxSizeAttachmentsPerEmail uint64   `json:"maxSizeAttachmentsPerEmail"`
	EmailQuerySortOptions      []string `json:"emailQuerySortOptions"`
	MayCreateTopLevelMailbox   bool     `json:"mayCreateTopLevelMailbox"`
}

type sessionAccount struct {
	Name                string         `json:"name"`
	IsPersonal          bool           `json:"isPersonal"`
	IsReadOnly          bool           `json:"isReadOnly"`
	AccountCapabilities map[string]any `json:"accountCapabilities"`
}

type sessionResource struct {
	Capabilities    map[string]any            `json:"capabilities"`
	Accounts        map[string]sessionAccount `json:"accounts"`
	PrimaryAccounts map[string]string         `json:"primaryAccounts"`
	Username        string                    `json:"username"`
	APIURL          string                    `json:"apiUrl"`
	DownloadURL     string                    `json:"downloadUrl"`
	UploadURL       string                    `json:"uploadUrl"`
	EventSourceURL  string                    `json:"eventSourceUrl"`
	State           string                    `json:"state"`
}

func coreCapability() *core.Core {
	return &core.Core{
		MaxSizeUpload: 0, MaxConcurrentUpload: 1,
		MaxSizeRequest: maxSizeRequest, MaxConcurrentRequests: maxConcurrentRequests,
		MaxCallsInRequest: maxCallsInRequest, MaxObjectsInGet: maxObjectsInGet, MaxObjectsInSet: maxObjectsInSet,
		CollationAlgorithms: []jmap.CollationAlgo{},
	}
}

func (h *Handler) serveSession(w http.ResponseWriter, r *http.Request, u *user) {
	readable := u.t.Readable(u.login)
	base := h.baseURL(r)
	s := sessionResource{
		Capabilities:    map[string]any{capCore: coreCapability(), capMail: struct{}{}, capRetention: struct{}{}},
		Accounts:        make(map[string]sessionAccount, len(readable)),
		PrimaryAccounts: map[string]string{},
		Username:        u.login,
		APIURL:          base + apiPath,
		DownloadURL:     base + downloadPrefix + "{accountId}/{blobId}/{name}?type={type}",
		UploadURL:       base + uploadPrefix + "{accountId}/",
		EventSourceURL:  base + eventSourcePath + "?types={types}&closeafter={closeafter}&ping={ping}",
		State:           sessionState(u.login, readable),
	}
	mailCap := &mailAccountCapability{MaxSizeMailboxName: 1000, EmailQuerySortOptions: sortOptions}
	for _, mb := range readable {
		s.Accounts[accountID(mb.ID)] = sessionAccount{
			Name: mb.Address, IsPersonal: mb.Own,
			// The archive's content never changes. Keywords are each
			// user's own overlay, which Email/set still changes; myRights
			// of each Mailbox say so.
			IsReadOnly:          true,
			AccountCapabilities: map[string]any{capMail: mailCap, capRetention: struct{}{}},
		}
	}
	if len(readable) > 0 {
		// Readable lists the own mailbox first.
		s.PrimaryAccounts[capMail] = accountID(readable[0].ID)
	}
	writeJSON(w, http.StatusOK, &s)
}

// sessionState changes when the accounts the user sees change.
func sessionState(login string, readable []backend.MailboxView) string {
	h := sha256.New()
	h.Write([]byte(login))
	for _, mb := range readable {
		h.Write([]byte{0})
		h.Write([]byte(accountID(mb.ID) + " " + mb.Address))
		if mb.Own {
			h.Write([]byte(" own"))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
