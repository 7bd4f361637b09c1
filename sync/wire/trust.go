package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/syncthing/syncthing/lib/protocol"
)

// An enrolment token is "SECRET.HUBID": the one-time secret the hub checks,
// and the hub's device ID, which the box pins. One string to type (or to
// put in an image) gives the box both its ticket and the hub it may trust.

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTokenSecret returns a fresh random secret (130 bits).
func NewTokenSecret() (string, error) {
	b := make([]byte, 17)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return strings.ToLower(tokenEncoding.EncodeToString(b)), nil
}

// FormatToken joins a secret and the hub's device ID.
func FormatToken(secret string, hub protocol.DeviceID) string {
	return secret + "." + hub.String()
}

// ErrBadToken is wrapped when a token cannot be parsed.
var ErrBadToken = errors.New("not an enrolment token")

// ParseToken splits a token; a token without ".HUBID" returns the zero ID
// and the box must be given the hub's ID another way (--hub-id).
func ParseToken(tok string) (secret string, hub protocol.DeviceID, err error) {
	tok = strings.TrimSpace(tok)
	secret, id, found := strings.Cut(tok, ".")
	if len(secret) < 16 || len(secret) > 64 || strings.Trim(strings.ToLower(secret), "abcdefghijklmnopqrstuvwxyz234567") != "" {
		return "", protocol.EmptyDeviceID, fmt.Errorf("%w: the secret part must be the 27 letters and digits `outpost hub token create` printed", ErrBadToken)
	}
	if !found {
		return strings.ToLower(secret), protocol.EmptyDeviceID, nil
	}
	hub, err = protocol.DeviceIDFromString(id)
	if err != nil {
		return "", protocol.EmptyDeviceID, fmt.Errorf("%w: hub ID: %w", ErrBadToken, err)
	}
	return strings.ToLower(secret), hub, nil
}

// TokenDigest is what the hub stores instead of the secret.
func TokenDigest(secret string) string {
	s := sha256.Sum256([]byte(strings.ToLower(secret)))
	return hex.EncodeToString(s[:])
}

// ErrWrongPeer is wrapped when a TLS peer is not the device pinned.
var ErrWrongPeer = errors.New("peer certificate is not the pinned device")

// ClientTLS is the box's side of mutual TLS: it presents its own
// certificate and accepts only the hub whose device ID it pinned. CA chains
// and validity dates are deliberately not checked: a box's clock may be
// years off after a flat RTC battery, and the pin is the trust.
func ClientTLS(cert tls.Certificate, hub protocol.DeviceID) *tls.Config {
	c := pinned(hub, "check --upstream, or re-enrol with a token from this hub")
	c.Certificates = []tls.Certificate{cert}
	return c
}

// pinned accepts only the peer whose certificate has the device ID hub;
// hint says what to check when it is another.
func pinned(hub protocol.DeviceID, hint string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin check below
		MinVersion:         tls.VersionTLS13,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("verify hub: %w: no certificate", ErrWrongPeer)
			}
			if got := protocol.NewDeviceID(cs.PeerCertificates[0].Raw); got != hub {
				return fmt.Errorf("verify hub: %w: it is %s, expected %s; %s", ErrWrongPeer, got, hub, hint)
			}
			return nil
		},
	}
}

// ServerTLS is the hub's side: it asks every client for a certificate but
// lets the handler decide (the admin API authenticates by token instead).
func ServerTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequestClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

// PeerDevice is the device ID of the client certificate on a connection, or
// false when the client sent none.
func PeerDevice(cs *tls.ConnectionState) (protocol.DeviceID, bool) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return protocol.EmptyDeviceID, false
	}
	return protocol.NewDeviceID(cs.PeerCertificates[0].Raw), true
}

// AdminTLS is an operator tool's side of TLS to a hub's admin API: no
// client certificate (the admin token authenticates), the hub pinned.
func AdminTLS(hub protocol.DeviceID) *tls.Config {
	return pinned(hub, "check --hub and --hub-id")
}
