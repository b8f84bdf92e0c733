package tests

import "os/exec"

type execCmd = exec.Cmd

func newCmd(name string, args ...string) *execCmd { return exec.Command(name, args...) }
