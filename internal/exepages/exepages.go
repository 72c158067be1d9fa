// Package exepages gives back the resident pages of the agent's own
// executable once it has started.
//
// Starting touches code and read-only data the steady state never runs
// again: the init functions of every package, configuration parsing,
// registration of metrics, the first scan. The kernel maps a file page
// with its neighbours (fault-around, 64 KiB), so start-up alone leaves
// most of the 21 MB binary resident: about 12 MiB of a sidecar's RSS,
// where its heap in use is 3–5 MiB. Release unmaps those pages from the
// process; they stay in the page cache (shared with every other process
// running the same binary), and what the steady state touches again is
// mapped back on its first use, a minor fault. Only read-only mappings of
// the executable are released, so no content can be lost.
package exepages

// Release unmaps the executable's read-only pages from this process and
// returns how many bytes of mappings it released (0 where unsupported).
func Release() (int64, error) { return release() }
