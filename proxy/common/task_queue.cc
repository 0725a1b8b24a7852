#include "proxy/common/task_queue.h"

namespace tether::proxy {

namespace {

void onAsync(uv_async_t* handle) {
  auto* drain = static_cast<std::function<void()>*>(handle->data);
  (*drain)();
}

void onAsyncClosed(uv_handle_t* handle) {
  delete static_cast<std::function<void()>*>(handle->data);
  delete reinterpret_cast<uv_async_t*>(handle);
}

}  // namespace

TaskQueue::TaskQueue(uv_loop_t* loop) : async_(new uv_async_t) {
  async_->data = new std::function<void()>([this] { drain(); });
  // The loop's first async handle creates its eventfd, which can fail (out of descriptors).
  if (int rc = uv_async_init(loop, async_, onAsync); rc != 0) {
    error_ = std::string("cannot create a task queue: ") + uv_strerror(rc);
    delete static_cast<std::function<void()>*>(async_->data);
    delete async_;
    async_ = nullptr;
    closed_ = true;  // posts are dropped
  }
}

TaskQueue::~TaskQueue() { close(); }

void TaskQueue::post(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    tasks_.push_back(std::move(task));
  }
  uv_async_send(async_);
}

void TaskQueue::drain() {
  // uv_async_send coalesces: one callback may stand for many posts, so take them all.
  std::deque<Task> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(tasks_);
  }
  for (auto& t : batch) t();
}

void TaskQueue::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
    tasks_.clear();
  }
  if (!async_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(async_), onAsyncClosed);
}

}  // namespace tether::proxy
