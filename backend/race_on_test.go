//go:build race

package backend

// raceEnabled scales the heaviest tests down: the race detector makes
// them several times slower.
const raceEnabled = true
