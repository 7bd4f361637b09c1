package identity

import (
	"testing"

	"github.com/syncthing/syncthing/lib/protocol"
)

func TestLoadOrCreateIsStable(t *testing.T) {
	dir := t.TempDir()
	a, created, err := LoadOrCreate(dir, "box")
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	b, created, err := LoadOrCreate(dir, "box")
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	if a.DeviceID != b.DeviceID {
		t.Fatalf("device ID changed across restarts: %s vs %s", a.DeviceID, b.DeviceID)
	}
	if a.DeviceID != protocol.NewDeviceID(b.Cert.Certificate[0]) {
		t.Fatal("device ID is not derived from the certificate")
	}
	parsed, err := protocol.DeviceIDFromString(a.DeviceID.String())
	if err != nil || parsed != a.DeviceID {
		t.Fatalf("device ID text form does not round-trip: %v", err)
	}
	c, _, err := LoadOrCreate(t.TempDir(), "box")
	if err != nil || c.DeviceID == a.DeviceID {
		t.Fatalf("two boxes share a device ID (err %v)", err)
	}
}
