package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/conf"
	"github.com/mailvault/mailvault/imapd"
	"github.com/mailvault/mailvault/jmap"
	"github.com/mailvault/mailvault/mailgen"
	"github.com/mailvault/mailvault/server"
	"github.com/mailvault/mailvault/smtpd"
	"github.com/mailvault/mailvault/tlscert"
	"github.com/mailvault/mailvault/web"
)

func cmdServe(ctx context.Context, args []string) error {
	fs := newFlags("serve", "serve [-config FILE] [-demo]")
	cfgFile := fs.String("config", "", "TOML configuration `FILE` (default: built-in defaults; mailvault config example prints one)")
	demo := fs.Bool("demo", false, "create a demo tenant with a user and generated mail on first start")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := conf.Load(*cfgFile, os.Environ())
	if err != nil {
		return err
	}
	serverGC()
	log := newLogger(cfg.LogLevel, cfg.LogFormat, os.Stderr)
	s, err := server.Start(ctx, cfg, log, protocols(cfg), server.HTTPService{
		Patterns: []string{jmap.Prefix, jmap.WellKnownPath},
		New: func(s *server.Server) (server.Handler, error) {
			h := jmap.New(s.Provider, s.Config.HTTP.PublicURL, s.Log.With("component", "jmap"))
			fe := s.FrontEnd("jmap")
			h.SetMetrics(jmap.Metrics{Sessions: fe.Sessions, LoginsFailed: fe.LoginsFailed, Commands: fe.Commands})
			return h, nil
		},
	}, server.HTTPService{
		Patterns: []string{web.Prefix},
		New: func(s *server.Server) (server.Handler, error) {
			return web.New(s.Provider, s.Log.With("component", "web"), web.Options{Directory: s.Directory, Pull: s.Pull, Endpoints: s.EndpointStats}), nil
		},
	})
	if err != nil {
		return err
	}
	log.Info("mailvault started", "data_dir", cfg.DataDir, "api", "http://"+s.Addr("http").String()+"/api/v1",
		"token_file", server.TokenFile(cfg.DataDir))
	if *demo {
		if err := createDemo(ctx, s); err != nil {
			log.Error("demo setup failed", "err", err)
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	return s.Close()
}

// protocols lists the protocol listeners this build serves.
func protocols(cfg conf.Config) []server.Protocol {
	// The plain (STARTTLS) and the implicit-TLS listener share one IMAP
	// server.
	var imapSrv *imapd.Server
	newIMAP := func(s *server.Server) (*imapd.Server, error) {
		if imapSrv == nil {
			// The shared self-signed pair names the configured hostname,
			// whichever listener needs it first.
			if _, created, err := tlscert.Load(s.Provider.TLSDir(), s.Config.SMTP.Hostname); err != nil {
				return nil, err
			} else if created {
				s.Log.Warn("created a self-signed certificate; clients must trust it (see the README) or configure a real pair",
					"dir", s.Provider.TLSDir(), "names", "localhost, 127.0.0.1, ::1, "+s.Config.SMTP.Hostname)
			}
			srv, err := imapd.New(s.Provider, s.Config.IMAP, s.Config.DataDir, s.Log.With("component", "imapd"))
			if err != nil {
				return nil, err
			}
			fe := s.FrontEnd("imap")
			srv.SetMetrics(imapd.Metrics{Sessions: fe.Sessions, LoginsFailed: fe.LoginsFailed, Commands: fe.Commands})
			imapSrv = srv
		}
		return imapSrv, nil
	}
	return []server.Protocol{
		{Name: "imap", Addr: cfg.IMAP.Listen, New: func(s *server.Server) (server.Listener, error) {
			srv, err := newIMAP(s)
			if err != nil {
				return nil, err
			}
			return srv, nil
		}},
		{Name: "imaps", Addr: cfg.IMAP.ListenTLS, New: func(s *server.Server) (server.Listener, error) {
			srv, err := newIMAP(s)
			if err != nil {
				return nil, err
			}
			return srv.TLSListener(), nil
		}},
		{Name: "smtp", Addr: cfg.SMTP.Listen, New: func(s *server.Server) (server.Listener, error) {
			srv, err := smtpd.New(s.Provider, s.Config.SMTP, s.Log.With("component", "smtpd"))
			if err != nil {
				return nil, err
			}
			s.AddEndpointStats("smtp", func() any { return srv.Stats() })
			fe := s.FrontEnd("smtp")
			srv.SetMetrics(smtpd.Metrics{Sessions: fe.Sessions, LoginsFailed: fe.LoginsFailed, Commands: fe.Commands})
			for _, c := range srv.Collectors() {
				if err := s.Metrics().Register(c); err != nil {
					return nil, fmt.Errorf("smtp metrics: %w", err)
				}
			}
			return srv, nil
		}},
	}
}

func createDemo(ctx context.Context, s *server.Server) error {
	p := s.Provider
	if _, err := p.TenantInfo("demo"); err == nil {
		s.Log.Info("demo tenant exists already; log in as demo@demo.example with the password printed at its creation")
		return nil
	}
	if _, err := p.CreateTenant(ctx, "demo", []string{"demo.example"}, backend.Quotas{}); err != nil {
		return err
	}
	t, err := p.Tenant(ctx, "demo")
	if err != nil {
		return err
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	password := base64.RawURLEncoding.EncodeToString(pw)
	if _, err := t.CreateUser(ctx, backend.UserSpec{Login: "demo@demo.example", Password: password, Roles: []backend.Role{backend.RoleReader}, Mailbox: true}); err != nil {
		return err
	}
	g := mailgen.New(1, []string{"demo.example", "partner.example"}, 8)
	g.AvgSize = 8 << 10
	for _, pp := range g.People {
		if pp.Address != "demo@demo.example" && pp.Address[len(pp.Address)-len("demo.example"):] == "demo.example" {
			t.CreateMailbox(ctx, backend.MailboxSpec{Kind: backend.KindUser, Address: pp.Address})
		}
	}
	for i := 0; i < 300; i++ {
		m := g.Next()
		// Every demo message also goes to the demo user, so the mounted
		// archive is full at once.
		src := backend.Source{Recipients: []string{"demo@demo.example"}, Received: m.Date}
		if _, err := t.Ingest(ctx, m.Raw, src); err != nil {
			return fmt.Errorf("demo message %d: %w", i, err)
		}
	}
	fmt.Printf("\nDemo tenant ready: log in as demo@demo.example with password %s\n(IMAP %s, shown once)\n\n", password, s.Config.IMAP.Listen)
	return nil
}

// serverGCPercent is the collector's target in the server unless GOGC is
// set. Ingest makes mostly short-lived garbage (analysis, segment
// building); at Go's default of 100 the collector took 9-10% of the ingest
// CPU (bench ingest), at 200 about 4%, for heap peaks of three times the
// live heap instead of two.
const serverGCPercent = 200

func serverGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}
