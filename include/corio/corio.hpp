// corio/corio.hpp: the umbrella header; includes every public corio header.
#pragma once

#include "errors.hpp"
#include "result.hpp"
#include "task.hpp"
#include "loop.hpp"
#include "time.hpp"
#include "asio.hpp"
#include "cancel.hpp"
#include "gather.hpp"
#include "task_group.hpp"
#include "semaphore.hpp"
#include "sync.hpp"
#include "queue.hpp"
#include "limiter.hpp"
#include "generator.hpp"
