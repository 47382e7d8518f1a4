// `distvae convert images` and `distvae convert procedural` on every rank of a job: each rank
// writes its own shards, rank 0 prints the summary read back from disk. Progress with images/s
// and ETA goes to stderr.
#pragma once

#include "io/convert/convert_images.h"
#include "io/convert/convert_procedural.h"

namespace distvae {

// Both return the exit code; rank and world in the options are set from MPI (a singleton run
// outside mpirun / srun is rank 0 of 1). An error on one rank of several aborts the job, naming
// the rank.
int run_convert_images(ConvertImagesOptions options, bool quiet);
int run_convert_procedural(ConvertProceduralOptions options, bool quiet);

}  // namespace distvae
