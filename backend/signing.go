package backend

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/smallstep/pkcs7"
)

// The tenant's signing key signs the manifests of its Z3 packages. It is
// kept as a setting, the private key sealed with the tenant's data key like
// every other tenant secret.
const (
	signingSetting = "signing"
	signingPurpose = "signing key"
)

type signingRecord struct {
	CertPEM   string `json:"cert"`
	SealedKey []byte `json:"key"` // sealed PKCS #8 DER
}

// SigningCert returns the tenant's signing certificate (PEM), or
// ErrNotFound when it has none yet.
func (t *Tenant) SigningCert() ([]byte, error) {
	rec, err := t.signingRecord()
	if err != nil {
		return nil, err
	}
	return []byte(rec.CertPEM), nil
}

func (t *Tenant) signingRecord() (*signingRecord, error) {
	v, err := t.GetSetting(signingSetting)
	if err != nil {
		return nil, fmt.Errorf("signing certificate of tenant %q: %w", t.Name, err)
	}
	var rec signingRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("signing certificate of tenant %q: %w", t.Name, err)
	}
	return &rec, nil
}

// GenerateSigningKey makes a new ECDSA P-256 key and a self-signed
// certificate for it, valid for years (signatures must stay checkable as
// long as the archive keeps the mail), and stores them, replacing any
// earlier pair. It returns the certificate (PEM).
func (t *Tenant) GenerateSigningKey(ctx context.Context) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailvault archive " + t.Name, Organization: []string{t.Name}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(30, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := t.storeSigning(ctx, certPEM, keyDER); err != nil {
		return nil, err
	}
	t.Audit(ctx, ActorOf(ctx), "signing-key-generate", fmt.Sprintf("serial %x, valid until %s", serial, tmpl.NotAfter.Format(time.DateOnly)))
	return certPEM, nil
}

// ImportSigningKey stores a certificate and its private key (PEM: the
// certificate, optionally followed by its chain, and a PKCS #8, PKCS #1 or
// SEC 1 key), replacing any earlier pair.
func (t *Tenant) ImportSigningKey(ctx context.Context, certPEM, keyPEM []byte) error {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("%w signing certificate: no PEM CERTIFICATE", ErrInvalid)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%w signing certificate: %v", ErrInvalid, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return fmt.Errorf("%w signing key: no PEM block", ErrInvalid)
	}
	var key crypto.Signer
	if k, err := x509.ParsePKCS8PrivateKey(kb.Bytes); err == nil {
		key, _ = k.(crypto.Signer)
	} else if k, err := x509.ParsePKCS1PrivateKey(kb.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParseECPrivateKey(kb.Bytes); err == nil {
		key = k
	}
	if key == nil {
		return fmt.Errorf("%w signing key: not a PKCS #8, PKCS #1 or SEC 1 private key", ErrInvalid)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: the signing key does not belong to the certificate", ErrInvalid)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("%w signing key: %v", ErrInvalid, err)
	}
	if err := t.storeSigning(ctx, certPEM, keyDER); err != nil {
		return err
	}
	t.Audit(ctx, ActorOf(ctx), "signing-key-import", fmt.Sprintf("subject %q serial %x, valid until %s", cert.Subject.String(), cert.SerialNumber, cert.NotAfter.Format(time.DateOnly)))
	return nil
}

func (t *Tenant) storeSigning(ctx context.Context, certPEM, keyDER []byte) error {
	v, err := json.Marshal(signingRecord{CertPEM: string(certPEM), SealedKey: t.Seal(signingPurpose, keyDER)})
	if err != nil {
		return err
	}
	return t.PutSetting(ctx, signingSetting, v)
}

// signer returns the signing certificate and key, generating them on
// first use.
func (t *Tenant) signer(ctx context.Context) (*x509.Certificate, crypto.Signer, []byte, error) {
	rec, err := t.signingRecord()
	if errors.Is(err, ErrNotFound) {
		if _, err = t.GenerateSigningKey(ctx); err == nil {
			rec, err = t.signingRecord()
		}
	}
	if err != nil {
		return nil, nil, nil, err
	}
	block, _ := pem.Decode([]byte(rec.CertPEM))
	if block == nil {
		return nil, nil, nil, fmt.Errorf("signing certificate of tenant %q: bad PEM", t.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := t.Unseal(signingPurpose, rec.SealedKey)
	if err != nil {
		return nil, nil, nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, nil, fmt.Errorf("signing key of tenant %q: %T", t.Name, k)
	}
	return cert, key, []byte(rec.CertPEM), nil
}

// signDetached makes a detached CMS signature (DER) of content with the
// tenant's signing key, SHA-256, the certificate included.
func (t *Tenant) signDetached(ctx context.Context, content []byte) (sig, certPEM []byte, err error) {
	cert, key, certPEM, err := t.signer(ctx)
	if err != nil {
		return nil, nil, err
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(cert, key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, nil, fmt.Errorf("sign manifest: %w", err)
	}
	sd.Detach()
	sig, err = sd.Finish()
	if err != nil {
		return nil, nil, fmt.Errorf("sign manifest: %w", err)
	}
	return sig, certPEM, nil
}
