// The storage setup of the tusd that the tests compare Wharf with (scripts/services/tusd.sh builds tusd's own
// cmd/tusd with this file in place of its cmd/tusd/cli/composer.go, through `go build -overlay`). tusd's handler,
// hooks, flags and file store are its own, unchanged; only the choice among storage backends is cut down to the
// upload folder the tests use, so the build compiles neither the AWS, the Google Cloud nor the Azure SDK (about
// half of a fresh machine's CPU for this build). A cloud storage flag is refused, naming itself.
package cli

import (
	"os"
	"path/filepath"

	"github.com/tus/tusd/v2/pkg/filelocker"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
)

var Composer *handler.StoreComposer

func CreateComposer() {
	for flag, value := range map[string]string{"-s3-bucket": Flags.S3Bucket, "-gcs-bucket": Flags.GCSBucket, "-azure-storage": Flags.AzStorage} {
		if value != "" {
			stderr.Fatalf("%s: this tusd was built for the Wharf tests with the upload folder (-upload-dir) as its only storage", flag)
		}
	}
	dir, err := filepath.Abs(Flags.UploadDir)
	if err != nil {
		stderr.Fatalf("Unable to make absolute path: %s", err)
	}
	printStartupLog("Using '%s' as directory storage.\n", dir)
	if err := os.MkdirAll(dir, os.FileMode(Flags.DirPerms)); err != nil {
		stderr.Fatalf("Unable to ensure directory exists: %s", err)
	}
	Composer = handler.NewStoreComposer()
	store := filestore.New(dir)
	store.DirModePerm = os.FileMode(Flags.DirPerms) & os.ModePerm
	store.FileModePerm = os.FileMode(Flags.FilePerms) & os.ModePerm
	store.UseIn(Composer)
	locker := filelocker.New(dir)
	locker.AcquirerPollInterval = Flags.FilelockAcquirerPollInterval
	locker.HolderPollInterval = Flags.FilelockHolderPollInterval
	locker.UseIn(Composer)
	printStartupLog("Using %.2fMB as maximum size.\n", float64(Flags.MaxSize)/1024/1024)
}
