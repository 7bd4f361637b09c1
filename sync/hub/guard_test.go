package hub

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestSourceOf(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:443":                    "192.0.2.7/32",
		"[::ffff:192.0.2.7]:443":           "192.0.2.7/32",
		"[2001:db8:1:2:aaaa:bbbb:c:d]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2::1]:1":              "2001:db8:1:2::/64",
		"not an address":                   "invalid Prefix",
	} {
		if got := sourceOf(&http.Request{RemoteAddr: addr}).String(); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}

// TestSourceLimiter: a burst of failures, then one per failureEvery; and
// a table that never holds more than maxSources, forgetting the source
// whose last failure is oldest.
func TestSourceLimiter(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newSourceLimiter(func() time.Time { return now })
	a := netip.MustParsePrefix("192.0.2.1/32")
	for i := range failureBurst {
		if d := l.wait(a); d != 0 {
			t.Fatalf("failure %d: wait %v", i+1, d)
		}
		l.fail(a)
	}
	if d := l.wait(a); d != failureEvery {
		t.Fatalf("after the burst: wait %v, want %v", d, failureEvery)
	}
	now = now.Add(failureEvery / 2)
	if d := l.wait(a); d != failureEvery/2 {
		t.Fatalf("half-way: wait %v, want %v", d, failureEvery/2)
	}
	now = now.Add(failureEvery / 2)
	if d := l.wait(a); d != 0 {
		t.Fatalf("after %v: wait %v", failureEvery, d)
	}

	// A flood from many sources: the table stays bounded, the sources
	// that failed last are remembered, the oldest forgotten.
	for i := range 3 * maxSources {
		src := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		for range failureBurst {
			l.fail(src)
		}
	}
	if n := l.size(); n != maxSources {
		t.Fatalf("%d sources in the table, bound %d", n, maxSources)
	}
	last := 3*maxSources - 1
	if d := l.wait(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(last >> 16), byte(last >> 8), byte(last)}), 32)); d == 0 {
		t.Fatal("the latest source was forgotten")
	}
	if d := l.wait(a); d != 0 {
		t.Fatal("the oldest source is still remembered")
	}
	t.Logf("%d sources remembered", l.size())
}
