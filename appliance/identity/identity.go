// Package identity gives a node its key pair, self-signed certificate and
// syncthing-style device ID. The ID is the SHA-256 of the certificate, so it
// cannot be claimed without the key; its check-digited text form is short
// enough to read over a phone line when enrolling a box.
package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/appliance/atomicfile"
)

// Identity is a node's certificate and the device ID derived from it.
type Identity struct {
	Cert     tls.Certificate
	DeviceID protocol.DeviceID
}

const (
	certFile = "cert.pem"
	keyFile  = "key.pem"
)

// LoadOrCreate loads the identity kept in dir, generating one on first
// start. The key is written before the certificate and each file atomically,
// so a crash leaves either no identity (made afresh) or a whole one.
func LoadOrCreate(dir, commonName string) (*Identity, bool, error) {
	id, err := Load(dir)
	if err == nil {
		return id, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create identity: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("create identity: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, false, fmt.Errorf("create identity: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Outpost"}},
		NotBefore:             now.Add(-24 * time.Hour), // tolerate a box whose clock is behind
		NotAfter:              now.AddDate(20, 0, 0),    // the box outlives any renewal process
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{commonName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, false, fmt.Errorf("create identity: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("create identity: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, false, fmt.Errorf("create identity: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, false, fmt.Errorf("create identity: %w", err)
	}
	id, err = Load(dir)
	return id, true, err
}

// Load reads an existing identity; the error wraps os.ErrNotExist when the
// node has none yet.
func Load(dir string) (*Identity, error) {
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	if _, err := os.Stat(certPath); err != nil {
		return nil, fmt.Errorf("load identity from %s: %w", dir, err)
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("load identity from %s: %w; move the directory aside to make a new identity (the box must then be enrolled again)", dir, err)
	}
	return &Identity{Cert: cert, DeviceID: protocol.NewDeviceID(cert.Certificate[0])}, nil
}
