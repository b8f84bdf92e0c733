package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mailvault/mailvault/server"
)

func cmdSigning(ctx context.Context, args []string) error {
	op, args, err := sub(args, "show, generate, import")
	if err != nil {
		return err
	}
	fs := newFlags("signing "+op, "signing show -tenant T | generate -tenant T | import -tenant T -cert FILE -key FILE")
	cf := addClientFlags(fs)
	tenant := fs.String("tenant", "", "tenant name (required)")
	certFile := fs.String("cert", "", "import: certificate (PEM)")
	keyFile := fs.String("key", "", "import: its private key (PEM: PKCS #8, PKCS #1 or SEC 1)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *tenant == "" {
		return fmt.Errorf("-tenant is required")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var out server.SigningCert
	switch op {
	case "show":
		err = c.Do("GET", tenantPath(*tenant, "signing"), nil, &out)
	case "generate":
		err = c.Do("POST", tenantPath(*tenant, "signing", "generate"), nil, &out)
	case "import":
		if *certFile == "" || *keyFile == "" {
			return fmt.Errorf("import needs -cert and -key")
		}
		cert, err := os.ReadFile(*certFile)
		if err != nil {
			return err
		}
		key, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		if err := c.Do("PUT", tenantPath(*tenant, "signing"), server.SigningImport{Cert: string(cert), Key: string(key)}, nil); err != nil {
			return err
		}
		fmt.Println("signing key and certificate imported")
		return nil
	default:
		return fmt.Errorf("unknown sub-command %q: one of show, generate, import", op)
	}
	if err != nil {
		return err
	}
	fmt.Print(out.Cert)
	return nil
}
