package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// WaitOK polls url with GET every interval until it answers 200 OK, and
// returns when it did, for timing a server's start. Refused connections and
// other answers are what a starting server gives, so they are retried until
// ctx ends. The resolution of a start-up time measured with it is interval
// plus one request.
func WaitOK(ctx context.Context, url string, interval time.Duration) error {
	tr := newTransport(nil)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", url, err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		last = err
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("wait for %s: %w (last attempt: %v)", url, ctx.Err(), last)
		case <-t.C:
		}
	}
}

// PageResult is what Visit measured.
type PageResult struct {
	Pages    int64 // pages that answered 200 with a complete body
	Bytes    int64
	Errors   int64
	FirstErr string
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// Visit fetches every URL once, spread over clients keep-alive connections,
// expecting 200 OK for each: the page views a server's memory is measured
// after. It stops early only if ctx ends.
func Visit(ctx context.Context, urls []string, clients int) (*PageResult, error) {
	if clients < 1 {
		return nil, errors.New("visit pages: need at least one client")
	}
	var next atomic.Int64
	type tally struct {
		hist   histogram
		pages  int64
		bytes  int64
		errs   int64
		first  error
		client *http.Client
	}
	tallies := make([]*tally, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range tallies {
		t := &tally{client: &http.Client{Transport: newTransport(nil), Timeout: time.Minute}}
		tallies[i] = t
		wg.Go(func() {
			defer t.client.CloseIdleConnections()
			for ctx.Err() == nil {
				j := next.Add(1) - 1
				if j >= int64(len(urls)) {
					return
				}
				began := time.Now()
				n, err := getPage(ctx, t.client, urls[j])
				if err != nil {
					t.errs++
					if t.first == nil {
						t.first = err
					}
					continue
				}
				t.hist.add(time.Since(began))
				t.pages++
				t.bytes += n
			}
		})
	}
	wg.Wait()
	res := &PageResult{Elapsed: time.Since(start)}
	var h histogram
	for _, t := range tallies {
		h.merge(&t.hist)
		res.Pages += t.pages
		res.Bytes += t.bytes
		res.Errors += t.errs
		if res.FirstErr == "" && t.first != nil {
			res.FirstErr = t.first.Error()
		}
	}
	res.P50, res.P99 = h.quantile(0.5), h.quantile(0.99)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("visit pages: %w", err)
	}
	return res, nil
}

func getPage(ctx context.Context, hc *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: want 200 OK, got %s", url, resp.Status)
	}
	return n, nil
}
