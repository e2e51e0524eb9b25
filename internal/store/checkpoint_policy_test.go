package store

import "testing"

// TestCheckpointSpacingBounded: with the daemon's one checkpoint per 4096
// events, the kept checkpoints of a million-event log are never more than
// about CheckpointStride apart, so a past snapshot folds at most that many
// events; and there stay few of them.
func TestCheckpointSpacingBounded(t *testing.T) {
	const every, n = 4096, 1_000_000
	var kept []uint64
	for s := uint64(every); s <= n; s += every {
		kept = append(kept, s)
		drop := map[uint64]bool{}
		for _, d := range checkpointsToDrop(kept) {
			drop[d] = true
		}
		out := kept[:0]
		for _, k := range kept {
			if !drop[k] {
				out = append(out, k)
			}
		}
		kept = out
	}
	for i := 1; i < len(kept); i++ {
		if gap := kept[i] - kept[i-1]; gap > CheckpointStride+every {
			t.Errorf("checkpoints %d and %d are %d seqs apart, more than %d", kept[i-1], kept[i], gap, CheckpointStride+every)
		}
	}
	if max := RecentCheckpoints + 64 + n/CheckpointStride + 1; len(kept) > max {
		t.Errorf("kept %d checkpoints, want at most %d", len(kept), max)
	}
	t.Logf("%d checkpoints kept for %d events", len(kept), n)
}
