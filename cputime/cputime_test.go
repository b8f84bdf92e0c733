package cputime

import "testing"

func TestProcessGrows(t *testing.T) {
	start := Process()
	x := uint64(1)
	for end := start; end <= start; end = Process() {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 {
		t.Log(x) // keep the loop
	}
}
