package agent

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
)

// /healthz fails for a component that stopped and for a running one whose
// own check fails (the shipper's stall check), and recovers with the check.
func TestHealthChecks(t *testing.T) {
	st := newStatus()
	var stalled atomic.Bool
	st.addCheck("shipper", func() error {
		if stalled.Load() {
			return errors.New("log reading stalled")
		}
		return nil
	})
	if why := st.unhealthy(); len(why) != 0 {
		t.Fatalf("unhealthy at start: %v", why)
	}
	stalled.Store(true)
	if why := st.unhealthy(); !slices.Equal(why, []string{"shipper: log reading stalled"}) {
		t.Errorf("stalled: %v", why)
	}
	st.fail("collector")
	if why := st.unhealthy(); !slices.Equal(why, []string{"collector stopped", "shipper: log reading stalled"}) {
		t.Errorf("stalled and stopped: %v", why)
	}
	stalled.Store(false)
	if why := st.unhealthy(); !slices.Equal(why, []string{"collector stopped"}) {
		t.Errorf("stopped: %v", why)
	}
}
