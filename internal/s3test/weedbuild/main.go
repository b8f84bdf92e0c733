// Command weedbuild builds the SeaweedFS server the S3 tests run (once;
// later runs find it in the cache) and prints its path.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mailvault/mailvault/internal/s3test"
)

func main() {
	bin, err := s3test.Build(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(bin)
}
