import { readFileSync } from 'fs';
import { join } from 'path';
import * as ts from 'typescript';

const fixture = readFileSync(join(__dirname, 'sockjs-usage.fixture.txt'), 'utf8');

/** Type-checks the fixture with MODULE replaced by `specifier`; returns the error messages. */
function typeErrors(specifier: string): string[] {
  const fileName = join(__dirname, '__usage__.ts');
  const source = fixture.replace('from MODULE', `from ${JSON.stringify(specifier)}`);
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    esModuleInterop: true,
    skipLibCheck: true,
    types: ['node'],
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === fileName ? source : readFile(name));
  const exists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || exists(name);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version) =>
    name === fileName ? ts.createSourceFile(name, source, version) : getSourceFile(name, version);
  const program = ts.createProgram([fileName], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

describe('typings', () => {
  it('the usage fixture is valid code for @types/sockjs', () => {
    expect(typeErrors('sockjs')).toEqual([]);
  }, 30_000);

  it('code written against @types/sockjs compiles against sockjs-rx', () => {
    expect(typeErrors(join(__dirname, '..', '..', 'lib'))).toEqual([]);
  }, 30_000);
});
