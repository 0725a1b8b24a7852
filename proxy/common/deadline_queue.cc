#include "proxy/common/deadline_queue.h"

namespace tether::proxy {

void Deadline::arm(DeadlineQueue& queue, std::chrono::milliseconds timeout, DeadlineCallback& cb) {
  cancel();
  queue_ = &queue;
  cb_ = &cb;
  at_ = static_cast<uint64_t>(queue.clock_->loopMs(queue.loop_)) +
        static_cast<uint64_t>(timeout.count());
  for (auto& l : queue.lists_) {
    if (l->duration == static_cast<uint64_t>(timeout.count())) {
      list_ = l.get();
      break;
    }
  }
  if (!list_) {
    queue.lists_.push_back(
        std::make_unique<DeadlineList>(DeadlineList{static_cast<uint64_t>(timeout.count())}));
    list_ = queue.lists_.back().get();
  }
  queue.add(*this);
}

void Deadline::cancel() {
  if (list_) queue_->remove(*this);
}

DeadlineQueue::DeadlineQueue(uv_loop_t* loop, const Clock& clock)
    : loop_(loop), clock_(&clock), timer_(loop, [this] { fireExpired(); }) {}

void DeadlineQueue::add(Deadline& d) {
  DeadlineList& l = *d.list_;
  d.prev_ = l.tail;
  d.next_ = nullptr;
  if (l.tail) {
    l.tail->next_ = &d;
  } else {
    l.head = &d;
  }
  l.tail = &d;
  // Only a deadline earlier than the one the timer waits for needs the timer moved.
  if (scheduledAt_ == 0 || d.at_ < scheduledAt_) schedule();
}

void DeadlineQueue::remove(Deadline& d) {
  DeadlineList& l = *d.list_;
  if (d.prev_) {
    d.prev_->next_ = d.next_;
  } else {
    l.head = d.next_;
  }
  if (d.next_) {
    d.next_->prev_ = d.prev_;
  } else {
    l.tail = d.prev_;
  }
  d.list_ = nullptr;
  d.prev_ = d.next_ = nullptr;
  // The timer may now fire for nothing; fireExpired() then just reschedules.
}

void DeadlineQueue::schedule() {
  uint64_t earliest = 0;
  for (auto& l : lists_) {
    if (l->head && (earliest == 0 || l->head->at_ < earliest)) earliest = l->head->at_;
  }
  scheduledAt_ = earliest;
  if (earliest == 0 || stopped_) {
    timer_.stop();
    return;
  }
  uint64_t now = static_cast<uint64_t>(clock_->loopMs(loop_));
  timer_.start(std::chrono::milliseconds(earliest > now ? earliest - now : 0));
}

void DeadlineQueue::stop() {
  stopped_ = true;
  timer_.stop();
}

void DeadlineQueue::fireExpired() {
  if (stopped_) return;
  uint64_t now = static_cast<uint64_t>(clock_->loopMs(loop_));
  // By index: a callback may arm a deadline of a new duration, growing lists_.
  for (size_t i = 0; i < lists_.size(); ++i) {
    DeadlineList* l = lists_[i].get();
    while (l->head && l->head->at_ <= now) {
      Deadline* d = l->head;
      DeadlineCallback* cb = d->cb_;
      remove(*d);
      cb->onDeadline();  // may arm or cancel other deadlines, even free their owners
    }
  }
  schedule();
}

}  // namespace tether::proxy
