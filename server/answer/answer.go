// Package answer writes the answers of the management API, whose endpoints
// are in server, pull and dirsync: JSON bodies, and one mapping of errors
// to HTTP statuses for all of them. It is a package of its own because
// server mounts the endpoints of pull and dirsync.
package answer

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/mailvault/mailvault/backend"
)

var (
	// ErrBadRequest is a request the API cannot read (400).
	ErrBadRequest = errors.New("bad request")
	// ErrBusy is a run asked for while the same one is under way (409);
	// wrapped as "pull %w", it reads "pull is running already".
	ErrBusy = errors.New("is running already")
)

// JSON writes v, indented, with status code.
func JSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Status is the HTTP status of an endpoint's error; an error the request
// did not cause is 500.
func Status(err error) int {
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, backend.ErrExists), errors.Is(err, backend.ErrStale), errors.Is(err, ErrBusy):
		return http.StatusConflict
	case errors.Is(err, backend.ErrInvalid), errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, backend.ErrQuota):
		return http.StatusInsufficientStorage
	case errors.Is(err, backend.ErrDenied):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// Error writes err as {"error": "..."} with its Status; a 500 is logged,
// since its cause is on the server's side.
func Error(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := Status(err)
	if code == http.StatusInternalServerError {
		log.Error("management API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	JSON(w, code, map[string]string{"error": err.Error()})
}

// Handler serves fn, writing the error it returns.
func Handler(log *slog.Logger, fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			Error(w, r, log, err)
		}
	}
}
