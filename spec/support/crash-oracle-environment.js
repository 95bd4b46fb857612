/**
 * The test environment of every suite: Node's, plus a crash oracle. An `uncaughtException` or
 * `unhandledRejection` in the test process (a socket error without a listener, a listener that
 * throws on a later tick, a Promise no one awaits) fails the suite it happened in, even when it
 * happens between tests or after the last one, where Jest itself would not see it.
 */
const { TestEnvironment } = require('jest-environment-node');

class CrashOracleEnvironment extends TestEnvironment {
  #faults = [];
  #onException = (error) => this.#faults.push(`uncaughtException: ${error?.stack ?? String(error)}`);
  #onRejection = (reason) => this.#faults.push(`unhandledRejection: ${reason?.stack ?? String(reason)}`);

  async setup() {
    await super.setup();
    process.on('uncaughtException', this.#onException);
    process.on('unhandledRejection', this.#onRejection);
  }

  async teardown() {
    process.off('uncaughtException', this.#onException);
    process.off('unhandledRejection', this.#onRejection);
    await super.teardown();
    if (this.#faults.length > 0) {
      throw new Error(`The process saw ${this.#faults.length} fault(s) no test caught:\n${this.#faults.join('\n')}`);
    }
  }
}

module.exports = CrashOracleEnvironment;
