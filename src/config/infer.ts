// The TypeScript type of the data a JSON Schema (written `as const`) accepts, for the
// keywords the configuration schema uses: type, enum, const, anyOf, properties with
// required, additionalProperties, items. Other keywords (limits, patterns, `x-`
// annotations) narrow no type. Keys not in `required` are optional, unless they have a
// `default`: the loader fills those in (so a loaded configuration always has them).

type Simple<T> = T extends 'string' ? string : T extends 'integer' | 'number' ? number : T extends 'boolean' ? boolean : T extends 'null' ? null : never

type Props<P, R extends PropertyKey> = { -readonly [K in keyof P & R]: Infer<P[K]> } & { -readonly [K in Exclude<keyof P, R>]?: Infer<P[K]> }

type Flatten<T> = { [K in keyof T]: T[K] }

type WithDefault<P> = { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P]

type RequiredOf<S> = S extends { readonly required: ReadonlyArray<infer R extends PropertyKey> } ? R : never

export type Infer<S> = S extends { readonly anyOf: ReadonlyArray<infer U> }
  ? U extends unknown
    ? Infer<U>
    : never
  : S extends { readonly enum: ReadonlyArray<infer E> }
    ? E
    : S extends { readonly const: infer C }
      ? C
      : S extends { readonly type: 'array'; readonly items: infer I }
        ? Infer<I>[]
        : S extends { readonly type: 'object'; readonly properties: infer P }
          ? Flatten<Props<P, RequiredOf<S> | WithDefault<P>>>
          : S extends { readonly type: 'object'; readonly additionalProperties: infer A extends object }
            ? Record<string, Infer<A>>
            : S extends { readonly type: infer T }
              ? Simple<T>
              : unknown
