// Which backends this build has. SERPENT_CUDA is defined by the build when the CUDA backend is
// compiled in; code that must also compile without it wraps its CUDA calls in SERPENT_ON_CUDA,
// which becomes an error naming the missing backend in a build without CUDA.
#pragma once

#include "core/error.h"

#ifdef SERPENT_CUDA
#define SERPENT_ON_CUDA(...) __VA_ARGS__
#else
#define SERPENT_ON_CUDA(...) ::serpent::fail("this build of serpent has no CUDA backend")
#endif
