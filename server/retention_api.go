package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/server/answer"
)

// Retention endpoints. The provider token may read policies, holds,
// reports and a message's retention, and ask for dry runs; changing
// policies, placing and lifting holds and deleting need a compliance user
// of the tenant, who authenticates with HTTP Basic (login and password)
// instead of the token. The provider cannot delete.

// complianceActor returns the compliance user of the request or refuses.
func complianceActor(r *http.Request, t *backend.Tenant) (string, error) {
	u, ok := r.Context().Value(apiUserKey{}).(apiUser)
	if !ok || u.tenant != t.Name {
		return "", fmt.Errorf("%w: this needs a compliance user's login (HTTP Basic), not the provider token", backend.ErrDenied)
	}
	if !slices.Contains(t.Roles(u.login), backend.RoleCompliance) {
		return "", fmt.Errorf("%w: only a compliance user may do this", backend.ErrDenied)
	}
	return u.login, nil
}

// PoliciesRequest replaces a tenant's retention policies.
type PoliciesRequest struct {
	Policies []backend.Policy `json:"policies"`
}

// HoldRequest places a legal hold.
type HoldRequest = backend.Hold

// DeleteConfirm runs a deletion a dry run planned.
type DeleteConfirm struct {
	Request backend.DeleteRequest `json:"request"`
	Token   string                `json:"token"`
}

// maxPlanItems bounds the placements a dry run lists; the counts are
// always complete.
const maxPlanItems = 1000

// TenantDeletion schedules a tenant's end of life.
type TenantDeletion struct {
	Grace string `json:"grace"` // Go duration, e.g. "720h"
}

// tenantEndOfLife serves the provider's scheduling of a tenant's deletion
// (provider token only).
func (a *API) tenantEndOfLife(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	h("POST /api/v1/tenants/{t}/delete", func(w http.ResponseWriter, r *http.Request) error {
		var req TenantDeletion
		if err := decode(r, &req); err != nil {
			return err
		}
		grace, err := time.ParseDuration(req.Grace)
		if err != nil {
			return fmt.Errorf("%w: grace %q: %v", answer.ErrBadRequest, req.Grace, err)
		}
		info, err := a.p.ScheduleTenantDeletion(r.Context(), r.PathValue("t"), grace)
		if err != nil {
			return err
		}
		answer.JSON(w, 200, tenantJSON(info))
		return nil
	})
	h("POST /api/v1/tenants/{t}/undelete", func(w http.ResponseWriter, r *http.Request) error {
		if err := a.p.CancelTenantDeletion(r.Context(), r.PathValue("t")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	h("GET /api/v1/deleted-tenants", func(w http.ResponseWriter, r *http.Request) error {
		recs, err := a.p.DeletedTenants()
		if err != nil {
			return err
		}
		answer.JSON(w, 200, append([]backend.DeletedTenant{}, recs...))
		return nil
	})
}

func (a *API) retentionRoutes(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	withTenant := func(fn func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error) func(http.ResponseWriter, *http.Request) error {
		return func(w http.ResponseWriter, r *http.Request) error {
			t, err := a.tenant(r)
			if err != nil {
				return err
			}
			// A user (HTTP Basic) reaches these only as a compliance user
			// of this tenant; the provider token reads and dry-runs.
			if _, user := r.Context().Value(apiUserKey{}).(apiUser); user {
				if _, err := complianceActor(r, t); err != nil {
					return err
				}
			}
			return fn(w, r, t)
		}
	}
	h("GET /api/v1/tenants/{t}/retention/policies", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		ps, err := t.RetentionPolicies()
		if err != nil {
			return err
		}
		answer.JSON(w, 200, ps)
		return nil
	}))
	h("GET /api/v1/tenants/{t}/retention/policies/history", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		hist, err := t.PolicyHistory()
		if err != nil {
			return err
		}
		answer.JSON(w, 200, append([]backend.PolicySet{}, hist...))
		return nil
	}))
	h("PUT /api/v1/tenants/{t}/retention/policies", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		actor, err := complianceActor(r, t)
		if err != nil {
			return err
		}
		var req PoliciesRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		ps, err := t.SetRetentionPolicies(r.Context(), actor, req.Policies)
		if err != nil {
			return err
		}
		answer.JSON(w, 200, ps)
		return nil
	}))
	h("GET /api/v1/tenants/{t}/retention/messages/{mid}", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		mid, err := strconv.ParseUint(r.PathValue("mid"), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: message number %q", answer.ErrBadRequest, r.PathValue("mid"))
		}
		ret, err := t.EffectiveRetention(r.Context(), mid)
		if err != nil {
			return err
		}
		answer.JSON(w, 200, ret)
		return nil
	}))
	h("GET /api/v1/tenants/{t}/holds", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		hs, err := t.Holds()
		if err != nil {
			return err
		}
		answer.JSON(w, 200, append([]backend.Hold{}, hs...))
		return nil
	}))
	h("POST /api/v1/tenants/{t}/holds", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		actor, err := complianceActor(r, t)
		if err != nil {
			return err
		}
		var req HoldRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		hold, err := t.PlaceHold(r.Context(), actor, req)
		if err != nil {
			return err
		}
		answer.JSON(w, http.StatusCreated, hold)
		return nil
	}))
	h("DELETE /api/v1/tenants/{t}/holds/{id}", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		actor, err := complianceActor(r, t)
		if err != nil {
			return err
		}
		hold, err := t.LiftHold(r.Context(), actor, r.PathValue("id"))
		if err != nil {
			return err
		}
		answer.JSON(w, 200, hold)
		return nil
	}))
	h("POST /api/v1/tenants/{t}/retention/dry-run", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		var req backend.DeleteRequest
		if err := decode(r, &req); err != nil {
			return err
		}
		pl, err := t.DryRun(r.Context(), req)
		if err != nil {
			return err
		}
		answer.JSON(w, 200, capPlan(pl))
		return nil
	}))
	h("POST /api/v1/tenants/{t}/retention/job/dry-run", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		pl, err := t.RetentionDryRun(r.Context())
		if err != nil {
			return err
		}
		answer.JSON(w, 200, capPlan(pl))
		return nil
	}))
	h("POST /api/v1/tenants/{t}/retention/delete", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		actor, err := complianceActor(r, t)
		if err != nil {
			return err
		}
		var req DeleteConfirm
		if err := decode(r, &req); err != nil {
			return err
		}
		if req.Token == "" {
			return fmt.Errorf("%w: a deletion needs the token of its dry run", answer.ErrBadRequest)
		}
		rep, err := t.Delete(context.WithoutCancel(r.Context()), actor, req.Request, req.Token)
		if errors.Is(err, backend.ErrStale) {
			return fmt.Errorf("%w: dry-run again and confirm the new plan", err)
		}
		if err != nil {
			return err
		}
		answer.JSON(w, 200, rep)
		return nil
	}))
	h("POST /api/v1/tenants/{t}/retention/job/run", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		if _, err := complianceActor(r, t); err != nil {
			return err
		}
		rep, err := t.RunRetention(context.WithoutCancel(r.Context()))
		if err != nil {
			return err
		}
		answer.JSON(w, 200, rep)
		return nil
	}))
	h("GET /api/v1/tenants/{t}/retention/reports", withTenant(func(w http.ResponseWriter, r *http.Request, t *backend.Tenant) error {
		reps, err := t.RetentionReports()
		if err != nil {
			return err
		}
		answer.JSON(w, 200, append([]backend.RunReport{}, reps...))
		return nil
	}))
}

// PlanAnswer is a dry run's answer: the plan with at most maxPlanItems
// placements listed.
type PlanAnswer struct {
	*backend.DeletionPlan
	Truncated bool `json:"truncated,omitempty"`
}

func capPlan(pl *backend.DeletionPlan) PlanAnswer {
	out := PlanAnswer{DeletionPlan: pl}
	if len(pl.Items) > maxPlanItems {
		pl.Items, out.Truncated = pl.Items[:maxPlanItems], true
	}
	if len(pl.Review) > maxPlanItems {
		pl.Review, out.Truncated = pl.Review[:maxPlanItems], true
	}
	return out
}
