// Package connguard holds what keeps a node's HTTP servers (the LAN portal
// and the hub) serving while some clients are slow, stalled or greedy: caps
// on connections per client and in total, deadlines on headers and idle
// keep-alives, a minimum-progress deadline on request bodies and on every
// response write, and the http.Server built with all of them.
//
// Absolute deadlines suit only what must be quick whatever the link
// (request headers, an idle connection). A video to a phone on weak Wi-Fi
// or a pack upload over a satellite link may take many minutes, so bodies
// and responses are held to a minimum rate instead: every window must move
// a minimum number of bytes, or the connection is dropped. A stalled peer
// is gone within one window; a slow one that keeps moving is never cut.
package connguard

import "time"

// Limits are one server's deadlines and caps. The defaults are Portal and
// Hub; a zero field takes its default, so tests shorten only what they
// need.
type Limits struct {
	// ReadHeaderTimeout bounds the time from a request's first byte to the
	// end of its headers (and a new connection's wait for its first
	// request): headers are a few hundred bytes, so a client that takes
	// longer is trickling them on purpose.
	ReadHeaderTimeout time.Duration `json:"read_header_timeout,omitempty"`
	// IdleTimeout closes a keep-alive connection with no request for this
	// long.
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// MaxHeaderBytes bounds the request line and headers; net/http's
	// default is 1 MiB, which lets one connection pin a megabyte.
	MaxHeaderBytes int `json:"max_header_bytes,omitempty"`
	// MaxBodyBytes refuses larger request bodies (413) before reading
	// them; negative means the handlers bound what they read.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	// A request body must deliver BodyMinBytes (or its end) within every
	// BodyWindow, or the connection is dropped.
	BodyWindow   time.Duration `json:"body_window,omitempty"`
	BodyMinBytes int64         `json:"body_min_bytes,omitempty"`
	// The client must accept WriteMinBytes of a response (or its end)
	// within every WriteWindow, or the connection is dropped with a reset,
	// which frees what the kernel still queues for it at once.
	WriteWindow   time.Duration `json:"write_window,omitempty"`
	WriteMinBytes int64         `json:"write_min_bytes,omitempty"`
	// PerClient caps the connections one client holds at once: an IPv4
	// address, or an IPv6 /64 (one device picks addresses from its /64 at
	// will). Loopback clients are the box itself and count only toward
	// Total, unless CapLoopback is set (tests on 127.0.0.0/8 set it).
	PerClient   int  `json:"per_client,omitempty"`
	CapLoopback bool `json:"cap_loopback,omitempty"`
	// Total caps the server's open connections. It is lowered further to
	// what the process's descriptor limit allows (each connection may hold
	// a socket and a file), keeping descriptors for the database and the
	// sync client.
	Total int `json:"total,omitempty"`
	// SendBuffer, when positive, fixes each connection's kernel send
	// buffer (SO_SNDBUF) instead of letting it grow to tcp_wmem's maximum
	// (4 MiB by default): what a stalled reader can pin in kernel memory
	// until its write window ends. Negative leaves the kernel's autotuning.
	SendBuffer int `json:"send_buffer,omitempty"`
	// ShutdownGrace is how long in-flight requests get to finish when the
	// server stops.
	ShutdownGrace time.Duration `json:"shutdown_grace,omitempty"`
}

// Portal is what the LAN portal runs with. Its clients are phones and
// laptops on the school's Wi-Fi: close, but on weak radio links.
func Portal() Limits {
	return Limits{
		// A browser sends its headers in one packet; 10 s covers a phone
		// waking its radio several times over.
		ReadHeaderTimeout: 10 * time.Second,
		// Browsers reopen a closed keep-alive connection transparently,
		// and an idle one holds a goroutine and buffers (~20 KiB): one
		// minute, nginx's order of magnitude (75 s).
		IdleTimeout: 60 * time.Second,
		// nginx's default: four 8 KiB header buffers. The portal sets no
		// cookies, so real requests use a few hundred bytes.
		MaxHeaderBytes: 32 << 10,
		// The portal takes no uploads; a form post fits many times over.
		MaxBodyBytes: 64 << 10,
		// 16 KiB per 15 s (about 1 KiB/s): a body on the LAN arrives in
		// milliseconds; this only drops a client that trickles.
		BodyWindow:   15 * time.Second,
		BodyMinBytes: 16 << 10,
		// 256 KiB per 60 s (about 4 KiB/s, 35 kbit/s, a fraction of what
		// the poorest video needs to play) keeps any phone that still
		// plays anything; 60 s is nginx's send_timeout. A paused player
		// that stops reading is dropped after a minute and asks again
		// with a Range when it resumes. 256 KiB, not less: each chunk is
		// one sendfile call, so a 256 KiB range goes out in one; 128 KiB
		// chunks cost 5 % more CPU per request (docs/BENCHMARKS.md).
		WriteWindow:   60 * time.Second,
		WriteMinBytes: 256 << 10,
		// Browsers open at most 6 connections per host; 32 leaves room for
		// several browsers and apps on one device, or a few devices behind
		// a NAT, and keeps one stranger from holding the box's connections.
		PerClient: 32,
		// About 20 KiB of memory per idle connection plus its socket:
		// 2,048 of them stay under 64 MiB on a 1 GB Pi.
		Total: 2048,
		// 512 KiB (the kernel doubles it for its bookkeeping) is several
		// times the bandwidth-delay product of any Wi-Fi link (300 Mbit/s
		// at 5 ms is 190 KB) yet an eighth of the 4 MiB a stalled reader
		// could otherwise pin.
		SendBuffer: 512 << 10,
		// A video segment or a download in flight gets 10 s to finish.
		ShutdownGrace: 10 * time.Second,
	}
}

// Hub is what the hub runs with. Its clients are boxes and publishers on
// thin, flaky links (satellite, 2G), and anyone on the internet.
func Hub() Limits {
	return Limits{
		// Headers over a lossy satellite link may need several
		// retransmissions of one packet (RTO up to seconds each).
		ReadHeaderTimeout: 30 * time.Second,
		// Longer than the box's own idle timeout (90 s), so the box closes
		// first and never sends a request into a connection the hub is
		// closing.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 32 << 10,
		// Each handler bounds its own body (64 KiB of JSON, 8 MiB upload
		// parts, MaxPackBytes per upload).
		MaxBodyBytes: -1,
		// 32 KiB per minute (about 0.5 KiB/s, 4 kbit/s): an 8 MiB upload
		// part over the thinnest link that still carries anything useful.
		// Slower than that, the part would take over four hours.
		BodyWindow:   60 * time.Second,
		BodyMinBytes: 32 << 10,
		// 64 KiB per two minutes: blocks and patches to a box whose link
		// stalls for a minute now and then; the box resumes what a dropped
		// connection cut.
		WriteWindow:   2 * time.Minute,
		WriteMinBytes: 64 << 10,
		// A box uses one or two connections; 64 lets a district's boxes
		// share one NAT address.
		PerClient: 64,
		// A TLS connection holds ~40 KiB of buffers: 4,096 stay under
		// 200 MiB.
		Total: 4096,
		// The kernel's autotuning: a well-connected box far away needs a
		// large window, and a stalled one is dropped within WriteWindow.
		SendBuffer:    -1,
		ShutdownGrace: 10 * time.Second,
	}
}

// orDefaults fills l's zero fields from d.
func (l Limits) orDefaults(d Limits) Limits {
	pick := func(v, def time.Duration) time.Duration {
		if v == 0 {
			return def
		}
		return v
	}
	l.ReadHeaderTimeout = pick(l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	l.IdleTimeout = pick(l.IdleTimeout, d.IdleTimeout)
	l.BodyWindow = pick(l.BodyWindow, d.BodyWindow)
	l.WriteWindow = pick(l.WriteWindow, d.WriteWindow)
	l.ShutdownGrace = pick(l.ShutdownGrace, d.ShutdownGrace)
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.BodyMinBytes == 0 {
		l.BodyMinBytes = d.BodyMinBytes
	}
	if l.WriteMinBytes == 0 {
		l.WriteMinBytes = d.WriteMinBytes
	}
	if l.PerClient == 0 {
		l.PerClient = d.PerClient
	}
	if l.Total == 0 {
		l.Total = d.Total
	}
	if l.SendBuffer == 0 {
		l.SendBuffer = d.SendBuffer
	}
	return l
}
