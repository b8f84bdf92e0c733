//go:build !unix

package smtpd

import "time"

func processCPU() time.Duration { return 0 }
